// RtPlanAgent.config.json, next to RtPlanAgent.esapi.dll. Every entry is checked; each missing or
// wrong entry gets one line saying what to set. `python -m esapi_bridge.esapi.plugin_setup config`
// writes a config for the virtual environment it runs in.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;

namespace Rtplan.Plugin
{
    public sealed class PluginConfig
    {
        public const string FileName = "RtPlanAgent.config.json";
        public const int MaxIterationLimit = 50;
        public static readonly string[] ApproveModes = { "each", "auto" };
        public static readonly string[] Keys =
            { "python_dll", "venv", "site_template", "policy", "provider", "approve", "max_iterations", "log_dir" };

        private PluginConfig()
        {
        }

        /// <summary>Absolute path of the base interpreter's Python DLL (sysconfig LIBDIR/LDLIBRARY).</summary>
        public string PythonDll { get; private set; }

        /// <summary>The virtual environment (holds pyvenv.cfg).</summary>
        public string Venv { get; private set; }

        /// <summary>The base interpreter's prefix, from pyvenv.cfg's home.</summary>
        public string BasePrefix { get; private set; }

        /// <summary>The venv's site-packages folder.</summary>
        public string SitePackages { get; private set; }

        public string SiteTemplate { get; private set; }

        public string Policy { get; private set; }

        public string Provider { get; private set; }

        public string Approve { get; private set; }

        public int MaxIterations { get; private set; }

        public string LogDir { get; private set; }

        /// <summary>The file's text, handed to the Python entry point.</summary>
        public string Json { get; private set; }

        /// <summary>The config file next to the plugin assembly.</summary>
        public static string DefaultPath()
        {
            string dll = typeof(PluginConfig).Assembly.Location;
            return Path.Combine(Path.GetDirectoryName(dll) ?? ".", FileName);
        }

        /// <summary>Read and check the file; throws PluginConfigException listing every problem.</summary>
        public static PluginConfig Load(string path, string[] allowedPolicies, string[] allowedProviders)
        {
            if (!File.Exists(path))
                throw new PluginConfigException(new[]
                {
                    FileName + " was not found next to the plugin (" + Path.GetDirectoryName(Path.GetFullPath(path)) +
                    "): create it there (python -m esapi_bridge.esapi.plugin_setup config, run with the " +
                    "virtual environment's Python, writes one)",
                });
            string text = File.ReadAllText(path);
            Dictionary<string, object> data;
            try
            {
                data = MiniJson.Parse(text) as Dictionary<string, object>;
            }
            catch (JsonFormatException e)
            {
                throw new PluginConfigException(new[] { FileName + " is not valid JSON: " + e.Message + ": fix the file" });
            }
            if (data == null)
                throw new PluginConfigException(new[] { FileName + " must hold one JSON object {\"python_dll\": ..., ...}" });
            var problems = new List<string>();
            var config = new PluginConfig { Json = text };
            foreach (string key in data.Keys.Where(k => !Keys.Contains(k)).OrderBy(k => k, StringComparer.Ordinal))
                problems.Add(string.Format("{0}: unknown entry: remove it (the entries are {1})", key, string.Join(", ", Keys)));
            config.CheckVenv(data, problems);
            config.CheckPythonDll(data, problems);
            config.SiteTemplate = CheckTemplate(data, problems);
            config.Policy = Choice(data, "policy", allowedPolicies, "the policies this plugin build allows", problems);
            config.CheckProvider(data, allowedProviders, problems);
            config.Approve = Choice(data, "approve", ApproveModes,
                "\"each\" (the clinician reviews every proposal) or \"auto\" (runs to the end; cancel stops it)", problems);
            config.MaxIterations = CheckIterations(data, problems);
            config.LogDir = CheckLogDir(data, problems);
            if (problems.Count > 0)
                throw new PluginConfigException(problems);
            return config;
        }

        private static string String(Dictionary<string, object> data, string key, string what, List<string> problems)
        {
            object value;
            if (!data.TryGetValue(key, out value) || value == null)
            {
                problems.Add(key + ": missing: set it to " + what);
                return null;
            }
            var s = value as string;
            if (s == null || s.Trim().Length == 0)
            {
                problems.Add(key + ": must be a non-empty string: set it to " + what);
                return null;
            }
            return s.Trim();
        }

        private void CheckVenv(Dictionary<string, object> data, List<string> problems)
        {
            const string what = "the absolute path of the agent's virtual environment (the folder holding pyvenv.cfg)";
            string venv = String(data, "venv", what, problems);
            if (venv == null)
                return;
            string cfg = Path.Combine(venv, "pyvenv.cfg");
            if (!Path.IsPathRooted(venv) || !File.Exists(cfg))
            {
                problems.Add("venv: " + venv + " is not a virtual environment (no pyvenv.cfg): set it to " + what);
                return;
            }
            string home = File.ReadAllLines(cfg)
                .Select(l => l.Split(new[] { '=' }, 2))
                .Where(kv => kv.Length == 2 && kv[0].Trim() == "home")
                .Select(kv => kv[1].Trim()).FirstOrDefault();
            if (string.IsNullOrEmpty(home))
            {
                problems.Add("venv: " + cfg + " names no base interpreter (home = ...): recreate the virtual environment");
                return;
            }
            // pyvenv.cfg's home is the base interpreter's folder: the prefix on Windows, prefix/bin elsewhere
            bool windows = Path.DirectorySeparatorChar == '\\';
            Venv = Path.GetFullPath(venv);
            BasePrefix = Path.GetFullPath(windows ? home : Path.Combine(home, ".."));
            string lib = Path.Combine(Venv, windows ? "Lib" : "lib");
            string sp = windows
                ? Path.Combine(lib, "site-packages")
                : (Directory.Exists(lib) ? Directory.GetDirectories(lib, "python3*").Select(d => Path.Combine(d, "site-packages")).FirstOrDefault(Directory.Exists) : null);
            if (sp == null || !Directory.Exists(sp))
                problems.Add("venv: " + venv + " has no site-packages folder: recreate the virtual environment and install the agent");
            SitePackages = sp;
        }

        private void CheckPythonDll(Dictionary<string, object> data, List<string> problems)
        {
            const string what = "the absolute path of the Python DLL of the virtual environment's base interpreter " +
                "(its sysconfig LIBDIR and LDLIBRARY; python -m esapi_bridge.esapi.plugin_setup python-dll prints it)";
            string dll = String(data, "python_dll", what, problems);
            if (dll == null)
                return;
            if (!Path.IsPathRooted(dll))
            {
                problems.Add("python_dll: " + dll + " is not an absolute path (a bare name would be looked up on the library search path, " +
                    "which may hold another CPython): set it to " + what);
                return;
            }
            if (!File.Exists(dll))
            {
                problems.Add("python_dll: " + dll + " does not exist: set it to " + what);
                return;
            }
            string full = Path.GetFullPath(dll);
            if (BasePrefix != null && !full.StartsWith(BasePrefix.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.OrdinalIgnoreCase))
            {
                problems.Add("python_dll: " + dll + " is not the base interpreter's (its prefix is " + BasePrefix + "): set it to " + what);
                return;
            }
            PythonDll = full;
        }

        private static string CheckTemplate(Dictionary<string, object> data, List<string> problems)
        {
            const string what = "a bundled site template's name (e.g. prostate-basic) or the absolute path of a template YAML file";
            string t = String(data, "site_template", what, problems);
            if (t == null)
                return null;
            bool isName = Regex.IsMatch(t, "^[a-z0-9][a-z0-9-]*$");
            bool isFile = Path.IsPathRooted(t) && (t.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || t.EndsWith(".yml", StringComparison.OrdinalIgnoreCase));
            if (!isName && !isFile)
            {
                problems.Add("site_template: " + t + " is neither a template name nor an absolute .yaml path: set it to " + what);
                return null;
            }
            if (isFile && !File.Exists(t))
            {
                problems.Add("site_template: " + t + " does not exist: set it to " + what);
                return null;
            }
            return t;
        }

        private static string Choice(Dictionary<string, object> data, string key, IList<string> allowed, string what, List<string> problems)
        {
            string full = what + " (" + (allowed.Count == 0 ? "none" : string.Join(", ", allowed)) + ")";
            string v = String(data, key, "one of " + full, problems);
            if (v == null)
                return null;
            if (!allowed.Contains(v))
            {
                problems.Add(key + ": \"" + v + "\" is not one of " + full + ": set one of them");
                return null;
            }
            return v;
        }

        private void CheckProvider(Dictionary<string, object> data, string[] allowedProviders, List<string> problems)
        {
            object value;
            data.TryGetValue("provider", out value);
            if (Policy != "llm")
            {
                if (value != null)
                    problems.Add("provider: only the llm policy takes a provider: remove it or set it to null");
                return;
            }
            Provider = Choice(data, "provider", allowedProviders, "the LLM providers this plugin build allows", problems);
        }

        private static int CheckIterations(Dictionary<string, object> data, List<string> problems)
        {
            string what = string.Format(CultureInfo.InvariantCulture, "a whole number of iterations from 1 to {0}", MaxIterationLimit);
            object value;
            if (!data.TryGetValue("max_iterations", out value) || value == null)
            {
                problems.Add("max_iterations: missing: set it to " + what);
                return 0;
            }
            if (!(value is double) || (double)value != Math.Floor((double)value) || (double)value < 1 || (double)value > MaxIterationLimit)
            {
                problems.Add("max_iterations: " + Describe(value) + " is not " + what + ": set it to " + what);
                return 0;
            }
            return (int)(double)value;
        }

        private static string CheckLogDir(Dictionary<string, object> data, List<string> problems)
        {
            const string what = "the absolute path of an existing folder for session journals (not on a patient-named path)";
            string d = String(data, "log_dir", what, problems);
            if (d == null)
                return null;
            if (!Path.IsPathRooted(d) || !Directory.Exists(d))
            {
                problems.Add("log_dir: " + d + " is not an existing absolute folder: set it to " + what);
                return null;
            }
            return Path.GetFullPath(d);
        }

        private static string Describe(object value)
        {
            if (value is string) return "\"" + value + "\"";
            if (value is double) return ((double)value).ToString("R", CultureInfo.InvariantCulture);
            if (value is bool) return (bool)value ? "true" : "false";
            return "a JSON " + (value is List<object> ? "array" : "object");
        }
    }

    /// <summary>The config's problems, one line each (shown to the clinician as they are).</summary>
    public sealed class PluginConfigException : Exception
    {
        public PluginConfigException(IEnumerable<string> problems)
            : base(PluginConfig.FileName + ":\n  " + string.Join("\n  ", problems))
        {
            Problems = problems.ToArray();
        }

        public string[] Problems { get; private set; }
    }
}
