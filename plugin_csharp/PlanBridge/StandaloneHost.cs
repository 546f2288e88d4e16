// Standalone research mode: one STA thread owns the ESAPI Application (created with
// CustomScriptExecutable.CreateApplication, one per process, Dispose() on exit) and runs every
// ESAPI call from a job queue (ESAPI.md: Mono's Dispatcher does not work, so a queue, not a
// Dispatcher). StandaloneBridge marshals each PlanBridge call onto that thread, so PlanBridge
// stays the only code that touches the plan and keeps its thread check.
using System;
using System.Collections.Concurrent;
using System.Threading;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.Bridge
{
    /// <summary>Finds the plan to work on in an opened patient (course and plan by Id).</summary>
    public interface IPlanLocator
    {
        /// <returns>The plan, or null when the course or plan does not exist.</returns>
        ExternalPlanSetup Find(Patient patient, string courseId, string planId);
    }

    public sealed class StandaloneHost : IDisposable
    {
        private static readonly object Gate = new object();
        private static bool _created;

        private readonly BlockingCollection<Action> _jobs = new BlockingCollection<Action>();
        private readonly Thread _thread;
        private readonly ManualResetEventSlim _ready = new ManualResetEventSlim(false);
        private Application _application;
        private Exception _startError;
        private bool _disposed;

        private StandaloneHost(string scriptName)
        {
            _thread = new Thread(() => Loop(scriptName));
            _thread.Name = "ESAPI STA";
            _thread.IsBackground = true;
            _thread.SetApartmentState(ApartmentState.STA);
            _thread.Start();
            _ready.Wait();
        }

        /// <summary>Managed id of the STA thread that owns the Application.</summary>
        public int ThreadId { get { return _thread.ManagedThreadId; } }

        /// <summary>Start the STA thread and create the Application (once per process).</summary>
        public static StandaloneHost Start(string scriptName)
        {
            lock (Gate)
            {
                if (_created)
                    throw new InvalidOperationException(
                        "a StandaloneHost (an ESAPI Application) was already created in this process: ESAPI allows one per process");
                _created = true;
            }
            var host = new StandaloneHost(scriptName);
            if (host._startError != null)
            {
                Exception e = host._startError;
                host.Dispose();
                throw new InvalidOperationException(
                    "CustomScriptExecutable.CreateApplication failed: " + e.GetType().Name + ": " + e.Message, e);
            }
            return host;
        }

        private void Loop(string scriptName)
        {
            try
            {
                _application = CustomScriptExecutable.CreateApplication(scriptName);
            }
            catch (Exception e)
            {
                _startError = e;
            }
            _ready.Set();
            foreach (Action job in _jobs.GetConsumingEnumerable())
                job();
        }

        /// <summary>Run body on the STA thread and wait for it; its exception is rethrown here.</summary>
        public T Run<T>(Func<T> body)
        {
            if (Thread.CurrentThread.ManagedThreadId == _thread.ManagedThreadId)
                return body();
            if (_disposed)
                throw new ObjectDisposedException("StandaloneHost");
            T result = default(T);
            Exception error = null;
            using (var done = new ManualResetEventSlim(false))
            {
                _jobs.Add(() =>
                {
                    try { result = body(); }
                    catch (Exception e) { error = e; }
                    finally { done.Set(); }
                });
                done.Wait();
            }
            if (error != null)
                throw new InvalidOperationException(error.GetType().Name + ": " + error.Message, error);
            return result;
        }

        /// <summary>Open the patient, find the plan, refuse it unless UnApproved, begin modifications
        /// and make the bridge on the STA thread. Ids are not echoed in messages (logs).</summary>
        public StandaloneBridge OpenPlan(string patientId, string courseId, string planId, string technique, IPlanLocator locator)
        {
            if (locator == null)
                throw new ArgumentNullException("locator");
            PlanBridge bridge = Run(() =>
            {
                Patient patient = _application.OpenPatientById(patientId);
                if (patient == null)
                    throw new PluginRefusedException("no patient with the given patient id");
                ExternalPlanSetup plan = locator.Find(patient, courseId, planId);
                if (plan == null)
                {
                    _application.ClosePatient();
                    throw new PluginRefusedException("no external beam plan with the given course and plan ids");
                }
                if (plan.ApprovalStatus != PlanSetupApprovalStatus.UnApproved)
                {
                    _application.ClosePatient();
                    throw new PluginRefusedException(string.Format(
                        "the plan is {0}: only UnApproved plans are planned", plan.ApprovalStatus));
                }
                if (!patient.CanModifyData())
                    patient.BeginModifications();
                return new PlanBridge(patient, plan, technique);
            });
            return new StandaloneBridge(this, bridge);
        }

        /// <summary>Save (when asked) and close the open patient, on the STA thread.</summary>
        public void ClosePatient(bool save)
        {
            Run(() =>
            {
                if (save)
                    _application.SaveModifications();
                _application.ClosePatient();
                return true;
            });
        }

        /// <summary>Dispose the Application on its thread and end the thread.</summary>
        public void Dispose()
        {
            if (_disposed)
                return;
            if (_application != null)
                Run(() => { _application.Dispose(); return true; });
            _disposed = true;
            _jobs.CompleteAdding();
            _thread.Join();
        }
    }

    /// <summary>PlanBridge's methods, each run on the host's STA thread (same answers, same errors).</summary>
    public sealed class StandaloneBridge
    {
        private readonly StandaloneHost _host;
        private readonly PlanBridge _bridge;

        internal StandaloneBridge(StandaloneHost host, PlanBridge bridge)
        {
            _host = host;
            _bridge = bridge;
        }

        public int OwnerThreadId { get { return _bridge.OwnerThreadId; } }

        public string PlanInfo() { return _host.Run(() => _bridge.PlanInfo()); }

        public string Structures() { return _host.Run(() => _bridge.Structures()); }

        public string GetObjectives() { return _host.Run(() => _bridge.GetObjectives()); }

        public string SetObjectives(string objectivesJson) { return _host.Run(() => _bridge.SetObjectives(objectivesJson)); }

        public string Optimize(int maxIterations, string mode) { return _host.Run(() => _bridge.Optimize(maxIterations, mode)); }

        public string CalculateDose() { return _host.Run(() => _bridge.CalculateDose()); }

        public string Normalize(string structureId, string mode, double doseGy, double volumePct)
        {
            return _host.Run(() => _bridge.Normalize(structureId, mode, doseGy, volumePct));
        }

        public string GetDvh(string structureId, double binWidthGy) { return _host.Run(() => _bridge.GetDvh(structureId, binWidthGy)); }

        public string DoseAtVolume(string structureId, double volume, string volumeUnit)
        {
            return _host.Run(() => _bridge.DoseAtVolume(structureId, volume, volumeUnit));
        }

        public string VolumeAtDose(string structureId, double doseGy, string volumeUnit)
        {
            return _host.Run(() => _bridge.VolumeAtDose(structureId, doseGy, volumeUnit));
        }
    }
}
