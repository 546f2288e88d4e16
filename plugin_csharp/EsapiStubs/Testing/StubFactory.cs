// Test assembly of the ESAPI stubs (not part of the product): builds an in-memory patient, course,
// plan and structure set through the stubs' internal constructors, and connects the stubs'
// optimizer and dose calculation to handlers that the tests set from Python (the simulated TPS).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.EsapiStubs.Testing
{
    /// <summary>Runs the optimizer: request JSON in, result JSON out (see StubBackendJson).</summary>
    public delegate string OptimizeHandler(string requestJson);

    /// <summary>Calculates the dose of the current fluence; false when it cannot.</summary>
    public delegate bool DoseHandler();

    /// <summary>Cumulative DVH of the unnormalized dose as JSON (Gy, %), or null when there is none.</summary>
    public delegate string DvhHandler(string structureId);

    /// <summary>The objects of one in-memory plan.</summary>
    public sealed class StubPlan
    {
        internal StubPlan(Patient patient, Course course, ExternalPlanSetup plan)
        {
            Patient = patient;
            Course = course;
            Plan = plan;
        }

        public Patient Patient { get; private set; }

        public Course Course { get; private set; }

        public ExternalPlanSetup Plan { get; private set; }
    }

    public static class StubFactory
    {
        /// <param name="doseUnit">"Gy" or "cGy": the system dose unit of every DoseValue.</param>
        public static StubPlan CreatePlan(
            string planId, bool vmat, string doseUnit, double dosePerFractionGy, int fractions, int beamCount)
        {
            DoseValue.DoseUnit unit = doseUnit == "cGy" ? DoseValue.DoseUnit.cGy : DoseValue.DoseUnit.Gy;
            if (doseUnit != "cGy" && doseUnit != "Gy")
                throw new ArgumentException("doseUnit must be Gy or cGy");
            var patient = new Patient("PSEUDO-1");
            var course = new Course("C1", patient);
            double perFraction = unit == DoseValue.DoseUnit.cGy ? dosePerFractionGy * 100.0 : dosePerFractionGy;
            var plan = new ExternalPlanSetup(planId, course, new DoseValue(perFraction, unit), fractions, vmat);
            course.PlanList.Add(plan);
            plan.StructureSetValue = new StructureSet("SS1");
            for (int i = 0; i < beamCount; i++)
                plan.BeamList.Add(new Beam("B" + (i + 1).ToString(CultureInfo.InvariantCulture)));
            return new StubPlan(patient, course, plan);
        }

        public static Structure AddStructure(StubPlan p, string id, string dicomType, double volumeCm3, bool isEmpty)
        {
            var s = new Structure(id, dicomType, volumeCm3, isEmpty);
            p.Plan.StructureSet.StructureList.Add(s);
            return s;
        }

        public static void SetApprovalStatus(StubPlan p, string status)
        {
            p.Plan.Approval = (PlanSetupApprovalStatus)Enum.Parse(typeof(PlanSetupApprovalStatus), status);
        }

        /// <summary>Undo BeginModifications (as for a freshly opened patient).</summary>
        public static void EndModifications(StubPlan p)
        {
            p.Patient.ModificationsBegun = false;
        }

        public static void SetHandlers(StubPlan p, OptimizeHandler optimize, DoseHandler dose, DvhHandler dvh)
        {
            p.Plan.Backend = new DelegateBackend(optimize, dose, dvh);
        }

        private static Structure Find(StubPlan p, string id)
        {
            return p.Plan.StructureSet.StructureList.First(s => s.Id == id);
        }

        private static DoseValue Dose(StubPlan p, double doseGy)
        {
            DoseValue.DoseUnit unit = p.Plan.DosePerFractionValue.Unit;
            return new DoseValue(unit == DoseValue.DoseUnit.cGy ? doseGy * 100.0 : doseGy, unit);
        }

        /// <summary>A line objective as the Eclipse UI can make it (the API cannot add one).</summary>
        public static void AddLineObjective(
            StubPlan p, string structureId, string op, double[] doseGy, double[] volumePct, double priority)
        {
            var curve = doseGy.Select((d, i) => new DVHPoint(Dose(p, d), volumePct[i], "%")).ToArray();
            var o = new OptimizationLineObjective(
                Find(p, structureId), (OptimizationObjectiveOperator)Enum.Parse(typeof(OptimizationObjectiveOperator), op),
                curve, priority);
            p.Plan.OptimizationSetup.ObjectiveList.Add(o);
        }

        /// <summary>A mean-dose objective with a given operator (e.g. one read from another version).</summary>
        public static void AddMeanObjectiveWithOperator(StubPlan p, string structureId, string op, double doseGy, double priority)
        {
            var o = new OptimizationMeanDoseObjective(
                Find(p, structureId), (OptimizationObjectiveOperator)Enum.Parse(typeof(OptimizationObjectiveOperator), op),
                Dose(p, doseGy), priority);
            p.Plan.OptimizationSetup.ObjectiveList.Add(o);
        }

        /// <summary>One of the parameters the bridge must leave alone.</summary>
        public static void AddOtherParameter(StubPlan p, string kind)
        {
            OptimizationParameter parameter;
            switch (kind)
            {
                case "IMRTBeam": parameter = new OptimizationIMRTBeamParameter(); break;
                case "JawTrackingUsed": parameter = new OptimizationJawTrackingUsedParameter(); break;
                case "PointCloud": parameter = new OptimizationPointCloudParameter(); break;
                case "ExcludeStructure": parameter = new OptimizationExcludeStructureParameter(); break;
                default: throw new ArgumentException("unknown parameter kind " + kind);
            }
            p.Plan.OptimizationSetup.ParameterList.Add(parameter);
        }

        public static string[] ParameterKinds(StubPlan p)
        {
            return p.Plan.OptimizationSetup.ParameterList.Select(x => x.GetType().Name).ToArray();
        }
    }
}
