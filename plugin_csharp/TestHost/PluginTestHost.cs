// Test host (not part of the product): plays Eclipse for the plugin on Mono. It builds a stub plan
// from a spec file, connects the stubs' optimizer, dose and DVHs to the simulated TPS in Python
// (imported lazily, once the plugin has started CPython; every call inside Py.GIL(), since
// pythonnet releases the GIL around the bridge's .NET calls), makes a ScriptContext through the
// test assembly, sets a scripted clinician's window and calls Script.Execute like Eclipse does.
// Usage: mono Rtplan.PluginTestHost.exe SPEC.json RESULT.json
// The result file holds what the tests check: the outcome, the message or summary, the plan ids in
// the course, both plans' objectives and what the window saw.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Python.Runtime;
using Rtplan.EsapiStubs.Testing;
using Rtplan.Plugin;
using VMS.TPS.Common.Model.API;

namespace Rtplan.PluginTestHost
{
    public static class Program
    {
        private static string _specJson;
        private static dynamic _backend;

        private static dynamic Backend()
        {
            if (_backend == null)
            {
                var spec = (Dictionary<string, object>)MiniJson.Parse(_specJson);
                dynamic sys = Py.Import("sys");
                sys.path.insert(0, (string)spec["tests_dir"]);
                dynamic hosted = Py.Import("esapi_helpers.hosted");
                _backend = hosted.backend_for(_specJson);
            }
            return _backend;
        }

        private static string Objectives(ExternalPlanSetup plan)
        {
            return string.Join(";", plan.OptimizationSetup.Objectives.Select(o =>
            {
                var point = o as OptimizationPointObjective;
                string dose = point != null ? point.Dose.Dose.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "";
                return o.StructureId + ":" + o.Operator + ":" + dose + ":" + o.Priority.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            }));
        }

        private static string Quote(string s)
        {
            if (s == null) return "null";
            return "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "") + "\"";
        }

        private static string List(IEnumerable<string> items)
        {
            return "[" + string.Join(", ", items.Select(Quote)) + "]";
        }

        public static int Main(string[] args)
        {
            _specJson = File.ReadAllText(args[0]);
            var spec = (Dictionary<string, object>)MiniJson.Parse(_specJson);
            StubPlan p = StubFactory.CreatePlan(
                (string)spec["plan_id"], false, (string)spec["dose_unit"], (double)spec["dose_per_fraction_gy"],
                (int)(double)spec["fractions"], (int)(double)spec["beam_count"]);
            foreach (Dictionary<string, object> s in ((List<object>)spec["structures"]).Cast<Dictionary<string, object>>())
                StubFactory.AddStructure(p, (string)s["structure_id"], (string)s["dicom_type"], (double)s["volume_cm3"], (bool)s["is_empty"]);
            foreach (Dictionary<string, object> o in ((List<object>)spec["original_objectives"]).Cast<Dictionary<string, object>>())
                StubFactory.AddMeanObjectiveWithOperator(p, (string)o["structure_id"], "Upper", (double)o["dose_gy"], (double)o["priority"]);
            StubFactory.SetApprovalStatus(p, (string)spec["approval_status"]);
            StubFactory.SetHandlers(p,
                request => { using (Py.GIL()) return (string)Backend().optimize(request); },
                () => { using (Py.GIL()) return (bool)Backend().calculate_dose(); },
                id => { using (Py.GIL()) { PyObject r = Backend().dvh(id); return r.IsNone() ? null : r.As<string>(); } });
            string original = Objectives(p.Plan);
            int runs = spec.ContainsKey("runs") ? (int)(double)spec["runs"] : 1;
            var outcomes = new List<string>();
            ScriptedClinicianWindow window = null;
            for (int run = 0; run < runs; run++)
            {
                // the first run answers from the spec; a later one (a second launch in the same
                // process) has no answers: it stops at the first proposal
                window = new ScriptedClinicianWindow(run == 0 ? ((List<object>)spec["answers"]).Cast<string>().ToArray() : new string[0]);
                ScriptedClinicianWindow current = window;
                ClinicianWindows.Factory = () => current;
                ScriptContext context = ContextFactory.CreateContext(p, "physicist");
                string outcome = "ok", message = "";
                try
                {
                    new VMS.TPS.Script().Execute(context);
                }
                catch (Rtplan.Bridge.PluginRefusedException e)
                {
                    outcome = "refused";
                    message = e.Message;
                }
                catch (Exception e)
                {
                    outcome = "error";
                    message = e.GetType().FullName + ": " + e.Message + "\n" + e.StackTrace;
                }
                outcomes.Add("{\"outcome\": " + Quote(outcome) + ", \"message\": " + Quote(message) +
                    ", \"shown\": " + List(window.Shown) + ", \"progress\": " + List(window.ProgressLines) +
                    ", \"reviewed\": " + window.Reviewed.Count + "}");
            }
            string[] ids = ContextFactory.PlanIds(p);
            string copy = ids.Length > 1 ? Objectives(ContextFactory.FindPlanById(p, ids[1])) : null;
            string result = "{\n" +
                "\"runs\": [" + string.Join(",\n", outcomes) + "],\n" +
                "\"plan_ids\": " + List(ids) + ",\n" +
                "\"original_before\": " + Quote(original) + ",\n" +
                "\"original_after\": " + Quote(Objectives(p.Plan)) + ",\n" +
                "\"copy_objectives\": " + Quote(copy) + ",\n" +
                "\"python_started_by_plugin\": " + (PythonHost.StartedWith != null ? "true" : "false") + ",\n" +
                "\"python_initialized\": " + (PythonEngine.IsInitialized ? "true" : "false") + "\n}\n";
            File.WriteAllText(args[1], result);
            return 0;
        }
    }
}
