// Test assembly: script contexts and the standalone application's patients, built through the
// stubs' internal constructors (plugin code never constructs a ScriptContext: its constructor
// differs between ESAPI versions).
using System;
using System.Linq;
using Rtplan.Bridge;
using VMS.TPS.Common.Model.API;

namespace Rtplan.EsapiStubs.Testing
{
    public static class ContextFactory
    {
        /// <summary>The context Eclipse hands a script launched from the plan window of p.</summary>
        public static ScriptContext CreateContext(StubPlan p, string userId)
        {
            var context = new ScriptContext();
            context.PatientValue = p.Patient;
            context.CourseValue = p.Course;
            context.PlanValue = p.Plan;
            context.StructureSetValue = p.Plan.StructureSet;
            context.UserValue = new User(userId, "Test Physicist");
            context.InScope.AddRange(p.Course.PlanList);
            return context;
        }

        /// <summary>A context whose active plan is missing (no plan open in the plan window).</summary>
        public static ScriptContext CreateContextWithoutPlan(StubPlan p)
        {
            var context = new ScriptContext();
            context.PatientValue = p.Patient;
            context.CourseValue = p.Course;
            return context;
        }

        public static string[] PlanIds(StubPlan p)
        {
            return p.Course.PlanList.Select(x => x.Id).ToArray();
        }

        public static ExternalPlanSetup FindPlanById(StubPlan p, string planId)
        {
            return p.Course.PlanList.OfType<ExternalPlanSetup>().First(x => x.Id == planId);
        }

        /// <summary>Makes p's patient openable by Application.OpenPatientById.</summary>
        public static void RegisterPatient(StubPlan p)
        {
            lock (Application.Gate)
                Application.Patients[p.Patient.Id] = p.Patient;
        }

        public static bool ApplicationCreated { get { return Application.Created; } }
    }

    /// <summary>Finds a plan of the registered stub patients by course and plan id.</summary>
    public sealed class StubPlanLocator : IPlanLocator
    {
        public ExternalPlanSetup Find(Patient patient, string courseId, string planId)
        {
            foreach (StubPlan p in Registered.Where(x => x.Patient == patient && x.Course.Id == courseId))
            {
                ExternalPlanSetup plan = p.Course.PlanList.OfType<ExternalPlanSetup>().FirstOrDefault(x => x.Id == planId);
                if (plan != null)
                    return plan;
            }
            return null;
        }

        public static readonly System.Collections.Generic.List<StubPlan> Registered =
            new System.Collections.Generic.List<StubPlan>();

        public static void Register(StubPlan p)
        {
            ContextFactory.RegisterPatient(p);
            Registered.Add(p);
        }
    }
}
