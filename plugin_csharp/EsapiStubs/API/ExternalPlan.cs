// ESAPI 15.6 stub: ExternalPlanSetup (IMRT Optimize overloads, VMAT OptimizeVMAT overloads, leaf
// motions and dose) and the DVH arithmetic of the stubs.
using System;
using System.Collections.Generic;
using System.Linq;
using VMS.TPS.Common.Model.Types;

namespace VMS.TPS.Common.Model.API
{
    public class ExternalPlanSetup : PlanSetup
    {
        internal ExternalPlanSetup(string id, Course course, DoseValue dosePerFraction, int? fractions, bool vmat)
            : base(id, course, dosePerFraction, fractions)
        {
            IsVmat = vmat;
        }

        internal readonly bool IsVmat;
        internal bool HasFluence;
        internal bool HasLeafMotions;

        /// <summary>Backend default of the iteration limit, when the overload takes none.</summary>
        internal const int DefaultIterations = -1;

        private OptimizerResult Run(OptimizationOption option, int maxIterations, bool vmat)
        {
            CheckWritable();
            if (vmat != IsVmat)
                throw new InvalidOperationException(IsVmat
                    ? "VMAT plans are optimized with OptimizeVMAT."
                    : "IMRT plans are optimized with Optimize.");
            if (!OptimizationSetup.Objectives.Any())
                throw new InvalidOperationException("The plan has no optimization objectives.");
            if (Backend == null)
                throw new InvalidOperationException("No optimizer is available.");
            StubOptimizationOutcome outcome = Backend.Optimize(this, option, maxIterations, vmat);
            var values = new List<OptimizerObjectiveValue>();
            foreach (Structure s in StructureSet.StructureList)
            {
                double v;
                if (outcome.StructureValues.TryGetValue(s.Id, out v))
                    values.Add(new OptimizerObjectiveValue(s, v));
            }
            if (outcome.Success)
            {
                HasFluence = true;
                HasLeafMotions = false;
                DoseValid = false;
                NormalizationValue = double.NaN; // "no plan normalization" after optimization
            }
            return new OptimizerResult(outcome.Success, new OptimizerDVH[0], values, outcome.Total, outcome.Iterations);
        }

        public OptimizerResult Optimize()
        {
            return Run(OptimizationOption.RestartOptimization, DefaultIterations, false);
        }

        public OptimizerResult Optimize(int maxIterations)
        {
            return Run(OptimizationOption.RestartOptimization, maxIterations, false);
        }

        public OptimizerResult Optimize(int maxIterations, OptimizationOption optimizationOption)
        {
            return Run(optimizationOption, maxIterations, false);
        }

        public OptimizerResult Optimize(int maxIterations, OptimizationOption optimizationOption, string mlcId)
        {
            return Run(optimizationOption, maxIterations, false);
        }

        public OptimizerResult Optimize(OptimizationOptionsIMRT options)
        {
            return Run(options.InitialState, options.MaxIterations, false);
        }

        public OptimizerResult OptimizeVMAT()
        {
            return Run(OptimizationOption.RestartOptimization, DefaultIterations, true);
        }

        public OptimizerResult OptimizeVMAT(string mlcId)
        {
            return Run(OptimizationOption.RestartOptimization, DefaultIterations, true);
        }

        public OptimizerResult OptimizeVMAT(OptimizationOptionsVMAT options)
        {
            return Run(options.InitialState, DefaultIterations, true);
        }

        public CalculationResult CalculateLeafMotions()
        {
            CheckWritable();
            if (IsVmat || !HasFluence)
                throw new InvalidOperationException("Leaf motions need an optimized IMRT fluence.");
            HasLeafMotions = true;
            return new CalculationResult(true);
        }

        public CalculationResult CalculateLeafMotionsAndDose()
        {
            CalculateLeafMotions();
            return CalculateDose();
        }

        public CalculationResult CalculateDose()
        {
            CheckWritable();
            if (!HasFluence || (!IsVmat && !HasLeafMotions))
                throw new InvalidOperationException("Dose calculation needs an optimized plan (and leaf motions for IMRT).");
            bool ok = Backend != null && Backend.CalculateDose(this);
            DoseValid = ok;
            if (ok && DoseObject == null)
                DoseObject = new Dose("Dose");
            return new CalculationResult(ok);
        }
    }

    /// <summary>Interpolation on a cumulative curve (dose ascending, volume non-increasing).</summary>
    internal static class StubDvhMath
    {
        internal static double VolumeAtDose(StubCurve c, double doseGy)
        {
            double[] d = c.DoseGy, v = c.VolumePct;
            if (doseGy <= d[0])
                return v[0];
            if (doseGy >= d[d.Length - 1])
                return doseGy > d[d.Length - 1] ? 0.0 : v[v.Length - 1];
            int hi = Array.BinarySearch(d, doseGy);
            if (hi >= 0)
            {
                while (hi + 1 < d.Length && d[hi + 1] == doseGy)
                    hi++;
                return v[hi];
            }
            hi = ~hi;
            int lo = hi - 1;
            double span = d[hi] - d[lo];
            double t = span <= 0.0 ? 0.0 : (doseGy - d[lo]) / span;
            return v[lo] + t * (v[hi] - v[lo]);
        }

        internal static double DoseAtVolume(StubCurve c, double pct)
        {
            double[] d = c.DoseGy, v = c.VolumePct;
            if (pct <= 0.0)
                return c.MaxGy;
            if (pct >= 100.0)
                return c.MinGy;
            int last = v.Length - 1;
            if (v[last] >= pct)
                return Math.Min(d[last], c.MaxGy);
            int lo = 0;
            while (lo + 1 <= last && v[lo + 1] >= pct)
                lo++;
            int hi = lo + 1;
            double dv = v[lo] - v[hi];
            double t = dv <= 0.0 ? 0.0 : (v[lo] - pct) / dv;
            return Math.Min(d[lo] + t * (d[hi] - d[lo]), c.MaxGy);
        }

        internal static double StdDevGy(StubCurve c)
        {
            double m2 = 0.0, m1 = 0.0, total = 0.0;
            for (int i = 0; i + 1 < c.DoseGy.Length; i++)
            {
                double w = c.VolumePct[i] - c.VolumePct[i + 1];
                double mid = 0.5 * (c.DoseGy[i] + c.DoseGy[i + 1]);
                m1 += w * mid;
                m2 += w * mid * mid;
                total += w;
            }
            if (total <= 0.0)
                return 0.0;
            m1 /= total;
            return Math.Sqrt(Math.Max(0.0, m2 / total - m1 * m1));
        }
    }
}
