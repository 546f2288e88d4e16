// The order of writes of the plugin: refuse a plan that is not UnApproved (naming its status),
// check CanModifyData(), call BeginModifications(), copy the plan with Course.CopyPlanSetup, give
// the copy an Id that is unique in the course and at most 13 characters, and work only on the
// copy (the original's objectives stay untouched). PlanBridge sources are the only ESAPI code.
using System;
using System.Collections.Generic;
using System.Linq;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.Bridge
{
    /// <summary>Why the plugin did not start (shown to the clinician as it is).</summary>
    public sealed class PluginRefusedException : Exception
    {
        public PluginRefusedException(string message) : base(message)
        {
        }
    }

    /// <summary>The unapproved copy a session works on, made from the plan open in Eclipse.</summary>
    public sealed class WorkingCopy
    {
        /// <summary>Eclipse limits a plan Id to 13 characters.</summary>
        public const int MaxPlanIdLength = 13;

        private readonly Patient _patient;
        private readonly ExternalPlanSetup _copy;

        private WorkingCopy(Patient patient, ExternalPlanSetup copy)
        {
            _patient = patient;
            _copy = copy;
        }

        /// <summary>The copy's Id (for the clinician's window; never for logs or journals).</summary>
        public string CopyId { get { return _copy.Id; } }

        /// <summary>A bridge over the copy, on the calling thread; technique "IMRT" or "VMAT".</summary>
        public PlanBridge NewBridge(string technique)
        {
            return new PlanBridge(_patient, _copy, technique);
        }

        /// <summary>Refuse a context without an external beam plan or with a plan that is not
        /// UnApproved (naming its status); changes nothing.</summary>
        public static void Check(ScriptContext context)
        {
            if (context == null)
                throw new PluginRefusedException("no script context: launch RtPlanAgent from the plan window");
            ExternalPlanSetup plan = context.ExternalPlanSetup;
            if (plan == null)
                throw new PluginRefusedException(
                    "open an external beam plan (IMRT or VMAT) in the plan window, then launch RtPlanAgent");
            if (plan.ApprovalStatus != PlanSetupApprovalStatus.UnApproved)
                throw new PluginRefusedException(string.Format(
                    "the plan is {0}: RtPlanAgent works only on UnApproved plans (it plans on a copy; " +
                    "make an UnApproved plan and launch it there)", plan.ApprovalStatus));
        }

        /// <summary>Check, then begin modifications and copy, in that order.</summary>
        public static WorkingCopy Prepare(ScriptContext context)
        {
            Check(context);
            ExternalPlanSetup plan = context.ExternalPlanSetup;
            Patient patient = context.Patient;
            Course course = context.Course;
            if (patient == null || course == null)
                throw new PluginRefusedException("the plan has no patient or course in the script context");
            if (!patient.CanModifyData())
                patient.BeginModifications();
            if (!patient.CanModifyData())
                throw new PluginRefusedException(
                    "Eclipse does not allow modifications of this patient (is the script approved as writeable?)");
            var copy = course.CopyPlanSetup(plan) as ExternalPlanSetup;
            if (copy == null)
                throw new PluginRefusedException("Course.CopyPlanSetup did not return an external beam plan");
            SetUniqueId(copy, plan.Id, context.PlansInScope
                .Where(p => p != copy && p.Course == course).Select(p => p.Id));
            return new WorkingCopy(patient, copy);
        }

        /// <summary>The candidates for the copy's Id: up to 9 characters of the original, "_A" and
        /// a number (at most 13 characters in all).</summary>
        public static IEnumerable<string> IdCandidates(string originalId)
        {
            string stem = (originalId ?? "").Trim();
            if (stem.Length > 9)
                stem = stem.Substring(0, 9);
            for (int n = 1; n < 100; n++)
                yield return stem + "_A" + n;
        }

        private static void SetUniqueId(PlanSetup copy, string originalId, IEnumerable<string> taken)
        {
            var used = new HashSet<string>(taken, StringComparer.OrdinalIgnoreCase);
            foreach (string id in IdCandidates(originalId))
            {
                if (id.Length > MaxPlanIdLength || used.Contains(id))
                    continue;
                try
                {
                    copy.Id = id;
                    return;
                }
                catch (Exception)
                {
                    // Eclipse refuses an Id that a plan outside the scope already has: try the next
                }
            }
            throw new PluginRefusedException("no free plan Id for the copy (the plan's Id followed by _A1 .. _A99 are all taken)");
        }
    }
}
