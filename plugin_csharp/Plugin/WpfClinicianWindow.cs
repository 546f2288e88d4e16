// The clinician's window on the workstation (WPF): a progress log with a Cancel button, and a modal
// review dialog per proposal (approve / edit / feedback / stop). Compiled only with RTPLAN_WPF, which
// RtPlanAgent.csproj defines and the Mono build does not (Mono has no WPF): this file has never
// been compiled here. The session runs on Eclipse's UI thread, so Progress() pumps the dispatcher
// once to let a Cancel click through; between two progress lines (one iteration) the window waits.
#if RTPLAN_WPF
using System.Text;
using System.Windows;
using System.Windows.Controls;
using System.Windows.Threading;

namespace Rtplan.Plugin
{
    public sealed class WpfClinicianWindow : IClinicianWindow
    {
        private readonly Window _window;
        private readonly TextBox _log;
        private bool _cancel;

        public WpfClinicianWindow()
        {
            _log = new TextBox
            {
                IsReadOnly = true,
                TextWrapping = TextWrapping.Wrap,
                VerticalScrollBarVisibility = ScrollBarVisibility.Auto,
            };
            var cancel = new Button { Content = "Cancel (stop after this step)", Margin = new Thickness(4) };
            cancel.Click += (sender, e) => { _cancel = true; cancel.IsEnabled = false; };
            var panel = new DockPanel();
            DockPanel.SetDock(cancel, Dock.Bottom);
            panel.Children.Add(cancel);
            panel.Children.Add(_log);
            _window = new Window { Title = "RtPlanAgent", Width = 720, Height = 480, Content = panel };
            _window.Show();
        }

        public bool CancelRequested { get { return _cancel; } }

        public void Progress(string message)
        {
            _log.AppendText(message + "\n");
            _log.ScrollToEnd();
            Pump();
        }

        public string Review(string proposalJson)
        {
            var shown = new TextBox { Text = proposalJson, IsReadOnly = true, TextWrapping = TextWrapping.Wrap, Height = 220,
                VerticalScrollBarVisibility = ScrollBarVisibility.Auto };
            var edit = new TextBox { AcceptsReturn = true, Height = 120, VerticalScrollBarVisibility = ScrollBarVisibility.Auto };
            var feedback = new TextBox { Height = 40 };
            var buttons = new StackPanel { Orientation = Orientation.Horizontal };
            var dialog = new Window { Title = "RtPlanAgent: review the proposal", Width = 720, Height = 560, Owner = _window };
            string answer = "{\"action\": \"stop\"}";
            AddButton(buttons, "Approve", () => answer = "{\"action\": \"approve\"}", dialog);
            AddButton(buttons, "Apply my edit", () => answer = "{\"action\": \"edit\", \"objectives\": " + edit.Text + "}", dialog);
            AddButton(buttons, "Send feedback", () => answer = "{\"action\": \"feedback\", \"feedback\": " + Quote(feedback.Text) + "}", dialog);
            AddButton(buttons, "Stop", () => answer = "{\"action\": \"stop\"}", dialog);
            var stack = new StackPanel { Margin = new Thickness(6) };
            stack.Children.Add(new TextBlock { Text = "Proposal (JSON):" });
            stack.Children.Add(shown);
            stack.Children.Add(new TextBlock { Text = "Edited objectives (a JSON list, for 'Apply my edit'):" });
            stack.Children.Add(edit);
            stack.Children.Add(new TextBlock { Text = "Feedback to the planner:" });
            stack.Children.Add(feedback);
            stack.Children.Add(buttons);
            dialog.Content = stack;
            dialog.ShowDialog();
            return answer;
        }

        public void EditRejected(string reasons)
        {
            MessageBox.Show(_window, reasons, "RtPlanAgent: the edit was not applied");
        }

        public void Show(string text)
        {
            _log.AppendText(text + "\n");
            MessageBox.Show(_window, text, "RtPlanAgent");
        }

        private static void AddButton(Panel panel, string label, System.Action choose, Window dialog)
        {
            var b = new Button { Content = label, Margin = new Thickness(4), Padding = new Thickness(8, 2, 8, 2) };
            b.Click += (sender, e) => { choose(); dialog.Close(); };
            panel.Children.Add(b);
        }

        private static void Pump()
        {
            var frame = new DispatcherFrame();
            Dispatcher.CurrentDispatcher.BeginInvoke(DispatcherPriority.Background,
                new DispatcherOperationCallback(f => { ((DispatcherFrame)f).Continue = false; return null; }), frame);
            Dispatcher.PushFrame(frame);
        }

        private static string Quote(string s)
        {
            var b = new StringBuilder("\"");
            foreach (char c in s ?? "")
            {
                if (c == '"' || c == '\\') b.Append('\\').Append(c);
                else if (c < ' ') b.AppendFormat("\\u{0:x4}", (int)c);
                else b.Append(c);
            }
            return b.Append('"').ToString();
        }
    }
}
#endif
