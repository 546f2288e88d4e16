// The clinician's window: progress, approval of each proposal (approve / edit / stop / feedback) and
// cancel, behind one headless interface that the Python entry point calls through pythonnet. The
// workstation build implements it with WPF (WpfClinicianWindow, behind RTPLAN_WPF: Mono has no WPF);
// the tests use ScriptedClinicianWindow. Cancel is the clinician's stop.
using System;
using System.Collections.Generic;
using System.Linq;

namespace Rtplan.Plugin
{
    public interface IClinicianWindow
    {
        /// <summary>One line of progress (an iteration's result, "optimizing ...").</summary>
        void Progress(string message);

        /// <summary>Review a proposal (JSON: iteration, rationale, current, proposed, verdict). Answer JSON:
        /// {"action": "approve" | "edit" | "stop" | "feedback", "objectives": [...] (edit), "feedback": "..."}.</summary>
        string Review(string proposalJson);

        /// <summary>An edit the guardrails refused (the proposal is shown again).</summary>
        void EditRejected(string reasons);

        /// <summary>True once the clinician has pressed Cancel (the session stops at the next step).</summary>
        bool CancelRequested { get; }

        /// <summary>The session's summary, or why it did not run.</summary>
        void Show(string text);
    }

    /// <summary>Which window the plugin opens (the tests and headless hosts set their own).</summary>
    public static class ClinicianWindows
    {
        public static Func<IClinicianWindow> Factory { get; set; }

        internal static IClinicianWindow Create()
        {
            if (Factory != null)
                return Factory();
#if RTPLAN_WPF
            return new WpfClinicianWindow();
#else
            return new ConsoleClinicianWindow();
#endif
        }
    }

    /// <summary>Headless: writes to the console; approves nothing (approve "each" needs a real window).</summary>
    public sealed class ConsoleClinicianWindow : IClinicianWindow
    {
        public void Progress(string message) { Console.WriteLine(message); }

        public string Review(string proposalJson)
        {
            Console.WriteLine("no clinician window in this build: the session stops at the first proposal");
            return "{\"action\": \"stop\"}";
        }

        public void EditRejected(string reasons) { Console.WriteLine(reasons); }

        public bool CancelRequested { get { return false; } }

        public void Show(string text) { Console.WriteLine(text); }
    }

    /// <summary>Answers from a script, for tests: "approve", "stop", "feedback:TEXT", "edit:JSON-ARRAY",
    /// "cancel" (press Cancel now, then approve); an exhausted script answers stop.</summary>
    public sealed class ScriptedClinicianWindow : IClinicianWindow
    {
        private readonly Queue<string> _answers;
        private bool _cancel;

        public ScriptedClinicianWindow(string[] answers)
        {
            _answers = new Queue<string>(answers ?? new string[0]);
            Shown = new List<string>();
            Reviewed = new List<string>();
            ProgressLines = new List<string>();
            Rejections = new List<string>();
        }

        /// <summary>Cancel after this many progress lines (-1: never).</summary>
        public int CancelAfterProgress { get; set; } = -1;

        public List<string> Shown { get; private set; }

        public List<string> Reviewed { get; private set; }

        public List<string> ProgressLines { get; private set; }

        public List<string> Rejections { get; private set; }

        public void Progress(string message)
        {
            ProgressLines.Add(message);
            if (CancelAfterProgress >= 0 && ProgressLines.Count >= CancelAfterProgress)
                _cancel = true;
        }

        public string Review(string proposalJson)
        {
            Reviewed.Add(proposalJson);
            string a = _answers.Count > 0 ? _answers.Dequeue() : "stop";
            if (a == "cancel")
            {
                _cancel = true;
                a = "approve";
            }
            if (a.StartsWith("feedback:", StringComparison.Ordinal))
                return "{\"action\": \"feedback\", \"feedback\": " + Quote(a.Substring(9)) + "}";
            if (a.StartsWith("edit:", StringComparison.Ordinal))
                return "{\"action\": \"edit\", \"objectives\": " + a.Substring(5) + "}";
            return "{\"action\": " + Quote(a) + "}";
        }

        public void EditRejected(string reasons) { Rejections.Add(reasons); }

        public bool CancelRequested { get { return _cancel; } }

        public void Show(string text) { Shown.Add(text); }

        private static string Quote(string s)
        {
            return "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"";
        }
    }
}
