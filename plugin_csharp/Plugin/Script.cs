// The binary plugin's entry: Eclipse calls Script.Execute(ScriptContext) on its UI thread. The
// order: refuse a plan that is not UnApproved; read and check RtPlanAgent.config.json; check the agent's code against the hashes compiled
// into this DLL; begin modifications and copy the plan
// (Rtplan.Bridge.WorkingCopy: the bridge is the only code that touches the plan); start CPython
// once per process; call agent.eclipse_entry.run_hosted with the copy, the config, the code hash
// and the clinician's window; show the summary. A refusal is thrown as PluginRefusedException,
// which Eclipse shows as the script's error message. This file names ScriptContext and the
// ESAPIScript attribute only; every other ESAPI member is in the bridge.
using System;
using Rtplan.Bridge;
using Rtplan.Plugin;
using VMS.TPS.Common.Model.API;

[assembly: ESAPIScript(IsWriteable = true)]
// the assembly version is generated with the agent code's hash (BuildManifest.g.cs)

namespace VMS.TPS
{
    public class Script
    {
        public Script()
        {
        }

        public void Execute(ScriptContext context)
        {
            IClinicianWindow window = ClinicianWindows.Create();
            try
            {
                window.Show(Run(context, window));
            }
            catch (Exception e)
            {
                if (e is PluginRefusedException || e is PluginConfigException || e is AgentCodeChangedException)
                {
                    window.Show("RtPlanAgent did not run: " + e.Message);
                    throw new PluginRefusedException(e.Message);
                }
                throw;
            }
        }

        private static string Run(ScriptContext context, IClinicianWindow window)
        {
            WorkingCopy.Check(context); // refuses a plan that is not UnApproved before anything else
            PluginConfig config = PluginConfig.Load(PluginConfig.DefaultPath(), BuildManifest.Policies, BuildManifest.Providers);
            string hash = AgentCode.Verify(AgentCode.Built(), BuildManifest.CodeRoot, config.Venv);
            WorkingCopy copy = WorkingCopy.Prepare(context);
            window.Progress("working on a copy of the plan; the original plan is not changed");
            PythonHost.EnsureStarted(config);
            string summary = PythonHost.RunEntry(config, copy, hash, window);
            return summary + "\nThe agent's plan is the copy " + copy.CopyId + " (UnApproved; review it before approval).";
        }
    }
}
