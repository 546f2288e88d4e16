// ESAPI 15.6 stub: what a script starts from. ScriptContext (sealed; its public constructor differs
// between versions, so the stub has none: the test assembly builds contexts), ESAPIScriptAttribute
// (15.0+), and the standalone Application with CustomScriptExecutable (15.5+). Members as
// docs/ESAPI.md lists them; 16.1/18.0 additions (PlanSum, Calculation, StructureCodes, Equipment)
// are left out.
using System;
using System.Collections.Generic;
using System.Linq;

namespace VMS.TPS.Common.Model.API
{
    [AttributeUsage(AttributeTargets.Assembly)]
    public class ESAPIScriptAttribute : Attribute
    {
        public bool IsWriteable { get; set; }
    }

    public sealed class ScriptContext
    {
        internal ScriptContext()
        {
        }

        internal Patient PatientValue;
        internal Course CourseValue;
        internal StructureSet StructureSetValue;
        internal PlanSetup PlanValue;
        internal User UserValue;
        internal readonly List<PlanSetup> InScope = new List<PlanSetup>();

        public Patient Patient { get { return PatientValue; } }

        public Course Course { get { return CourseValue; } }

        public object Image { get { return null; } }

        public StructureSet StructureSet { get { return StructureSetValue; } }

        public PlanSetup PlanSetup { get { return PlanValue; } }

        /// <summary>Null when the active plan is not an external beam plan.</summary>
        public ExternalPlanSetup ExternalPlanSetup { get { return PlanValue as ExternalPlanSetup; } }

        public IEnumerable<PlanSetup> PlansInScope { get { return InScope.ToArray(); } }

        public User CurrentUser { get { return UserValue; } }

        public string ApplicationName { get { return "External Beam Planning"; } }

        public string VersionInfo { get { return "15.6 (stub)"; } }
    }

    /// <summary>A standalone ESAPI session: one per process, Dispose() before exit.</summary>
    public class Application : SerializableObject, IDisposable
    {
        internal Application()
        {
        }

        internal static readonly Dictionary<string, Patient> Patients = new Dictionary<string, Patient>();
        internal static bool Created;
        internal static readonly object Gate = new object();
        internal Patient Open;
        internal bool Disposed;

        internal static Application Create()
        {
            lock (Gate)
            {
                if (Created)
                    throw new InvalidOperationException("Only one Application can be created per process.");
                Created = true;
                return new Application();
            }
        }

        public static Application CreateApplication()
        {
            return Create();
        }

        public Patient OpenPatientById(string id)
        {
            if (Disposed)
                throw new ObjectDisposedException("Application");
            if (Open != null)
                throw new InvalidOperationException("Close the open patient first.");
            Patient p;
            Open = Patients.TryGetValue(id ?? "", out p) ? p : null;
            return Open;
        }

        public void ClosePatient()
        {
            if (Open != null)
                Open.ModificationsBegun = false;
            Open = null;
        }

        public void SaveModifications()
        {
            if (Open == null || !Open.ModificationsBegun)
                throw new InvalidOperationException("No modifications to save.");
            SavedCount++;
        }

        internal int SavedCount;

        public void Dispose()
        {
            ClosePatient();
            Disposed = true;
        }
    }

    public static class CustomScriptExecutable
    {
        /// <summary>For interpreters (e.g. Python): read-only in a clinical environment.</summary>
        public static Application CreateApplication(string scriptName)
        {
            if (string.IsNullOrEmpty(scriptName))
                throw new ArgumentNullException("scriptName");
            return Application.Create();
        }
    }
}
