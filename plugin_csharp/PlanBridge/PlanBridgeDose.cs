// PlanBridge: plan normalization, DVH curves and point queries, converted to Gy at the boundary.
using System;
using System.Linq;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.Bridge
{
    public sealed partial class PlanBridge
    {
        /// <summary>Dose shown for a plan normalization value, relative to the unnormalized dose.</summary>
        /// <remarks>
        /// PlanSetup.PlanNormalizationValue is "the plan normalization value in percentage ... Double.NaN
        /// if it is not defined" (Varian's API doc comment); a value V shows the unnormalized dose
        /// times 100 / V, and setting 100 shows the unnormalized dose (VarianAPIs/Varian-Code-Samples,
        /// Research Symposium 2015 AutomatedPlanningDemo/PlanGeneration.cs; esimiele/VMAT-TBI-CSI,
        /// NormalizePlan: value = 100 * D(coverage) / Rx after setting 100). Setting it replaces the
        /// previous value (it is relative to the unnormalized dose); optimization resets it to NaN.
        /// </remarks>
        private static double ShownPerUnnormalized(double normalizationValuePct)
        {
            return double.IsNaN(normalizationValuePct) ? 1.0 : 100.0 / normalizationValuePct;
        }

        /// <param name="mode">"dose_at_volume" (D at volumePct = doseGy), "mean" or "none".</param>
        public string Normalize(string structureId, string mode, double doseGy, double volumePct)
        {
            return Call(() =>
            {
                double old = _plan.PlanNormalizationValue;
                if (mode == "none")
                    return new NormalizationData { Factor = 1.0, NormalizationValuePct = NullIfNaN(old) };
                if (mode != "dose_at_volume" && mode != "mean")
                    throw new BridgeException(ErrorKinds.InvalidInput, "unknown normalization mode " + mode);
                if (!(doseGy > 0.0) || double.IsInfinity(doseGy))
                    throw new BridgeException(ErrorKinds.InvalidInput, "dose_gy must be > 0, got " + doseGy);
                if (!(volumePct >= 0.0 && volumePct <= 100.0))
                    throw new BridgeException(ErrorKinds.InvalidInput, "volume_pct must be within 0..100, got " + volumePct);
                Structure s = FindStructure(structureId, true);
                if (!_plan.IsDoseValid)
                    throw new BridgeException(ErrorKinds.DoseUnavailable, "no valid dose: calculate the dose first");
                BeginWrite("normalization");
                DoseUnits units = Units();
                _plan.PlanNormalizationValue = 100.0; // read the unnormalized dose
                double currentGy;
                if (mode == "mean")
                {
                    DVHData dvh = _plan.GetDVHCumulativeData(
                        s, DoseValuePresentation.Absolute, VolumePresentation.Relative, 0.01 * units.PerGy);
                    if (dvh == null)
                        throw new BridgeException(ErrorKinds.DoseUnavailable, "no DVH for " + structureId);
                    currentGy = units.ToGy(dvh.MeanDose);
                }
                else
                {
                    currentGy = units.ToGy(_plan.GetDoseAtVolume(
                        s, volumePct, VolumePresentation.Relative, DoseValuePresentation.Absolute));
                }
                if (double.IsNaN(currentGy) || currentGy <= 0.0)
                    throw new BridgeException(ErrorKinds.OptimizationFailed, string.Format(
                        "cannot normalize: structure '{0}' receives no dose at the reference", structureId));
                double value = 100.0 * currentGy / doseGy;
                _plan.PlanNormalizationValue = value;
                return new NormalizationData
                {
                    Factor = ShownPerUnnormalized(value) / ShownPerUnnormalized(old),
                    NormalizationValuePct = value,
                };
            });
        }

        /// <param name="binWidthGy">Bin width in Gy (converted to the system unit for ESAPI).</param>
        public string GetDvh(string structureId, double binWidthGy)
        {
            return Call(() =>
            {
                if (!(binWidthGy > 0.0 && binWidthGy <= 1.0))
                    throw new BridgeException(ErrorKinds.InvalidInput, "bin_width_gy must be within (0, 1], got " + binWidthGy);
                Structure s = FindStructure(structureId, true);
                DoseUnits units = Units();
                // GetDVHCumulativeData's bin width is in the system dose unit (cGy or Gy).
                double binSystem = binWidthGy * units.PerGy;
                DVHData dvh = _plan.GetDVHCumulativeData(
                    s, DoseValuePresentation.Absolute, VolumePresentation.Relative, binSystem);
                if (dvh == null)
                    throw new BridgeException(ErrorKinds.DoseUnavailable, string.Format(
                        "ESAPI returned no DVH for '{0}' (GetDVHCumulativeData gave null)", structureId));
                DVHPoint[] curve = dvh.CurveData;
                if (curve == null || curve.Length < 2)
                    throw new BridgeException(ErrorKinds.DoseUnavailable, "the DVH of '" + structureId + "' has no curve");
                if (curve.Any(p => p.VolumeUnit != "%"))
                    throw new BridgeException(ErrorKinds.UnitError, "expected a relative DVH volume in %");
                return new DvhData
                {
                    StructureId = s.Id,
                    VolumeCm3 = dvh.Volume,
                    DoseGy = curve.Select(p => units.ToGy(p.DoseValue)).ToArray(),
                    VolumePct = curve.Select(p => p.Volume).ToArray(),
                    MinDoseGy = units.ToGy(dvh.MinDose),
                    MeanDoseGy = units.ToGy(dvh.MeanDose),
                    MaxDoseGy = units.ToGy(dvh.MaxDose),
                    MedianDoseGy = units.ToGy(dvh.MedianDose),
                    BinWidthGy = binWidthGy,
                    BinWidthSystem = binSystem,
                };
            });
        }

        private static VolumePresentation Presentation(string volumeUnit)
        {
            if (volumeUnit == "percent")
                return VolumePresentation.Relative;
            if (volumeUnit == "cm3")
                return VolumePresentation.AbsoluteCm3;
            throw new BridgeException(ErrorKinds.InvalidInput, "volume unit must be percent or cm3, got " + volumeUnit);
        }

        /// <summary>Dose (Gy) received by the hottest <paramref name="volume"/> (percent or cm3).</summary>
        public string DoseAtVolume(string structureId, double volume, string volumeUnit)
        {
            return Call(() =>
            {
                VolumePresentation presentation = Presentation(volumeUnit);
                Structure s = FindStructure(structureId, true);
                DoseValue dose = _plan.GetDoseAtVolume(s, volume, presentation, DoseValuePresentation.Absolute);
                if (double.IsNaN(dose.Dose))
                    throw new BridgeException(ErrorKinds.DoseUnavailable, "no dose at volume for '" + structureId + "'");
                return new NumberData { Number = Units().ToGy(dose) };
            });
        }

        /// <summary>Volume (percent or cm3) receiving at least <paramref name="doseGy"/>.</summary>
        public string VolumeAtDose(string structureId, double doseGy, string volumeUnit)
        {
            return Call(() =>
            {
                VolumePresentation presentation = Presentation(volumeUnit);
                Structure s = FindStructure(structureId, true);
                double volume = _plan.GetVolumeAtDose(s, Units().FromGy(doseGy), presentation);
                if (double.IsNaN(volume))
                    throw new BridgeException(ErrorKinds.DoseUnavailable, "no volume at dose for '" + structureId + "'");
                return new NumberData { Number = volume };
            });
        }
    }
}
