// Embedded CPython through pythonnet's Python.Runtime. Runtime.PythonDLL is the config's python_dll
// (checked there to be the virtual environment's base interpreter's, never a name looked up on the
// library search path); PythonEngine.Initialize() runs once per Eclipse process and is never shut
// down (re-initialization fails on .NET Framework); the initializing thread then gives the GIL up
// with BeginAllowThreads(), and every Python call below runs inside Py.GIL().
using System;
using System.IO;
using Python.Runtime;

namespace Rtplan.Plugin
{
    public static class PythonHost
    {
        /// <summary>The Python module and function the plugin calls.</summary>
        public const string EntryModule = "agent.eclipse_entry";
        public const string EntryFunction = "run_hosted";

        private static readonly object Gate = new object();
        private static string _startedWith;

        /// <summary>The Python DLL this process's engine was started from (null: not by the plugin).</summary>
        public static string StartedWith { get { return _startedWith; } }

        /// <summary>Start CPython once per process.</summary>
        public static void EnsureStarted(PluginConfig config)
        {
            lock (Gate)
            {
                if (PythonEngine.IsInitialized)
                {
                    if (_startedWith != null && !string.Equals(_startedWith, config.PythonDll, StringComparison.OrdinalIgnoreCase))
                        throw new InvalidOperationException(
                            "Python was started in this Eclipse process from " + _startedWith + "; python_dll now names " +
                            config.PythonDll + ": restart Eclipse to use another Python (it cannot be restarted in a process)");
                    return; // started earlier (by the plugin, or by a host that runs Python already)
                }
                Runtime.PythonDLL = config.PythonDll;
                PythonEngine.PythonHome = config.BasePrefix;
                PythonEngine.Initialize();
                _startedWith = config.PythonDll;
                PythonEngine.BeginAllowThreads();
            }
        }

        /// <summary>Put the venv's site-packages first on sys.path (with its .pth files) and call the
        /// entry point; returns the summary text it answers.</summary>
        public static string RunEntry(PluginConfig config, object workingCopy, string agentCodeHash, IClinicianWindow window)
        {
            using (Py.GIL())
            {
                dynamic sys = Py.Import("sys");
                dynamic site = Py.Import("site");
                string sp = Path.GetFullPath(config.SitePackages);
                site.addsitedir(sp);
                sys.path.remove(sp);
                sys.path.insert(0, sp);
                dynamic entry = Py.Import(EntryModule);
                PyObject run = ((PyObject)entry).GetAttr(EntryFunction);
                using (PyObject answer = run.Invoke(
                    workingCopy.ToPython(), new PyString(config.Json), new PyString(agentCodeHash), window.ToPython()))
                    return answer.As<string>();
            }
        }
    }
}
