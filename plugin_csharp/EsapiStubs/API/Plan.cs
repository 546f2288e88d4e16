// ESAPI 15.6 stub: PlanningItem (StructureSet, Dose, DVH queries), PlanSetup, ExternalPlanSetup.
// Optimization and dose calculation are delegated to an internal backend that the test assembly
// supplies (in the tests: the simulated TPS through Python), so that real dose flows through here.
//
// PlanNormalizationValue follows Varian's API doc comment ("The plan normalization value in
// percentage. The plan is normalized according to the plan normalization value, for instance,
// 200%. The value is Double.NaN if it is not defined. The property setter changes also the plan
// normalization method to Plan Normalization Value.") and public scripts that use it:
// VarianAPIs/Varian-Code-Samples, "webinars & workshops/Research Symposium 2015/Eclipse
// Scripting API/Projects/AutomatedPlanningDemo/PlanGeneration.cs" (sets 100 to read the
// unnormalized dose) and esimiele/VMAT-TBI-CSI (NormalizePlan of its optimization loop: after setting
// 100, value = 100 * D(coverage) / (relative Rx), so a value V shows the dose scaled by 100 / V,
// relative to the unnormalized dose: setting it again replaces, it does not compound).
// ESAPI.md: a successful optimization sets the plan to "no plan normalization" (NaN).
using System;
using System.Collections.Generic;
using System.Linq;
using VMS.TPS.Common.Model.Types;

namespace VMS.TPS.Common.Model.API
{
    /// <summary>A cumulative DVH of the unnormalized dose, in Gy and percent (stub internal).</summary>
    internal sealed class StubCurve
    {
        internal double[] DoseGy;
        internal double[] VolumePct;
        internal double MinGy, MeanGy, MaxGy;
    }

    internal sealed class StubOptimizationOutcome
    {
        internal bool Success;
        internal double Total;
        internal int Iterations;
        internal Dictionary<string, double> StructureValues = new Dictionary<string, double>();
    }

    /// <summary>What computes fluence and dose behind the stubs (set by the test assembly).</summary>
    internal interface IStubBackend
    {
        StubOptimizationOutcome Optimize(ExternalPlanSetup plan, OptimizationOption option, int maxIterations, bool vmat);

        bool CalculateDose(ExternalPlanSetup plan);

        StubCurve RawDvh(Structure structure);
    }

    public abstract class PlanningItem : ApiDataObject
    {
        internal PlanningItem(string id) : base(id)
        {
        }

        internal StructureSet StructureSetValue;
        internal Dose DoseObject;
        internal bool DoseValid;
        internal IStubBackend Backend;

        public StructureSet StructureSet { get { return StructureSetValue; } }

        public Dose Dose { get { return DoseValid ? DoseObject : null; } }

        internal abstract double DoseScale { get; }

        internal abstract DoseValue.DoseUnit SystemUnit { get; }

        internal abstract double PrescriptionGy { get; }

        private StubCurve Raw(Structure structure)
        {
            if (!DoseValid || structure == null || structure.IsEmpty || Backend == null)
                return null;
            return Backend.RawDvh(structure);
        }

        private double ToPresentation(double doseGy, DoseValuePresentation presentation)
        {
            if (presentation == DoseValuePresentation.Relative)
                return 100.0 * doseGy / PrescriptionGy;
            return SystemUnit == DoseValue.DoseUnit.cGy ? doseGy * 100.0 : doseGy;
        }

        private DoseValue.DoseUnit PresentationUnit(DoseValuePresentation presentation)
        {
            return presentation == DoseValuePresentation.Relative ? DoseValue.DoseUnit.Percent : SystemUnit;
        }

        private double FromDoseValue(DoseValue dose)
        {
            switch (dose.Unit)
            {
                case DoseValue.DoseUnit.Gy: return dose.Dose;
                case DoseValue.DoseUnit.cGy: return dose.Dose / 100.0;
                case DoseValue.DoseUnit.Percent: return dose.Dose * PrescriptionGy / 100.0;
                default: throw new ArgumentException("Unknown dose unit.");
            }
        }

        public DVHData GetDVHCumulativeData(
            Structure structure, DoseValuePresentation dosePresentation, VolumePresentation volumePresentation, double binWidth)
        {
            StubCurve raw = Raw(structure);
            if (raw == null || !(binWidth > 0.0))
                return null;
            double scale = DoseScale;
            double maxShown = ToPresentation(raw.MaxGy * scale, dosePresentation);
            int n = (int)Math.Ceiling(maxShown / binWidth) + 2;
            double volumeFactor = volumePresentation == VolumePresentation.AbsoluteCm3 ? structure.Volume / 100.0 : 1.0;
            string volumeUnit = volumePresentation == VolumePresentation.AbsoluteCm3 ? "cm³" : "%";
            DoseValue.DoseUnit unit = PresentationUnit(dosePresentation);
            double gyPerShown = ToPresentation(1.0, dosePresentation);
            var points = new DVHPoint[n];
            for (int k = 0; k < n; k++)
            {
                double shown = k * binWidth;
                double pct = StubDvhMath.VolumeAtDose(raw, shown / gyPerShown / scale);
                points[k] = new DVHPoint(new DoseValue(shown, unit), pct * volumeFactor, volumeUnit);
            }
            var data = new DVHData();
            data.Curve = points;
            data.Min = new DoseValue(ToPresentation(raw.MinGy * scale, dosePresentation), unit);
            data.Max = new DoseValue(maxShown, unit);
            data.Mean = new DoseValue(ToPresentation(raw.MeanGy * scale, dosePresentation), unit);
            data.Median = new DoseValue(ToPresentation(StubDvhMath.DoseAtVolume(raw, 50.0) * scale, dosePresentation), unit);
            data.StdDevValue = ToPresentation(StubDvhMath.StdDevGy(raw) * scale, dosePresentation);
            data.VolumeValue = structure.Volume;
            data.CoverageValue = 1.0;
            data.SamplingCoverageValue = 1.0;
            return data;
        }

        public DoseValue GetDoseAtVolume(
            Structure structure, double volume, VolumePresentation volumePresentation, DoseValuePresentation requestedDosePresentation)
        {
            DoseValue.DoseUnit unit = PresentationUnit(requestedDosePresentation);
            StubCurve raw = Raw(structure);
            if (raw == null)
                return new DoseValue(double.NaN, unit);
            double pct = volumePresentation == VolumePresentation.AbsoluteCm3 ? 100.0 * volume / structure.Volume : volume;
            double doseGy = StubDvhMath.DoseAtVolume(raw, pct) * DoseScale;
            return new DoseValue(ToPresentation(doseGy, requestedDosePresentation), unit);
        }

        public double GetVolumeAtDose(Structure structure, DoseValue dose, VolumePresentation requestedVolumePresentation)
        {
            StubCurve raw = Raw(structure);
            if (raw == null)
                return double.NaN;
            double pct = StubDvhMath.VolumeAtDose(raw, FromDoseValue(dose) / DoseScale);
            return requestedVolumePresentation == VolumePresentation.AbsoluteCm3 ? pct * structure.Volume / 100.0 : pct;
        }
    }

    public class PlanSetup : PlanningItem
    {
        internal PlanSetup(string id, Course course, DoseValue dosePerFraction, int? fractions) : base(id)
        {
            CourseValue = course;
            DosePerFractionValue = dosePerFraction;
            Fractions = fractions;
            OptimizationSetupValue = new OptimizationSetup(this);
        }

        internal Course CourseValue;
        internal DoseValue DosePerFractionValue;
        internal int? Fractions;
        internal PlanSetupApprovalStatus Approval = PlanSetupApprovalStatus.UnApproved;
        internal readonly List<Beam> BeamList = new List<Beam>();
        internal readonly OptimizationSetup OptimizationSetupValue;
        internal double NormalizationValue = double.NaN;

        public new string Id
        {
            get { return IdValue; }
            set
            {
                CheckWritable();
                // Eclipse: a plan Id has at most 13 characters and is unique within its course
                if (string.IsNullOrEmpty(value) || value.Length > 13)
                    throw new ArgumentException("The plan ID must have 1 to 13 characters.");
                if (CourseValue != null && CourseValue.PlanList.Any(p => p != this && p.Id == value))
                    throw new ArgumentException("A plan with ID '" + value + "' already exists in the course.");
                IdValue = value;
            }
        }

        public Course Course { get { return CourseValue; } }

        public DoseValue TotalDose
        {
            get { return new DoseValue(DosePerFractionValue.Dose * (Fractions ?? 0), DosePerFractionValue.Unit); }
        }

        public DoseValue DosePerFraction { get { return DosePerFractionValue; } }

        public int? NumberOfFractions { get { return Fractions; } }

        public PlanSetupApprovalStatus ApprovalStatus { get { return Approval; } }

        public IEnumerable<Beam> Beams { get { return BeamList.ToArray(); } }

        public OptimizationSetup OptimizationSetup { get { return OptimizationSetupValue; } }

        public bool IsDoseValid { get { return DoseValid; } }

        /// <summary>Plan normalization value in percent (NaN: no plan normalization); the shown dose is
        /// the unnormalized dose times 100 / value. See the file header for the sources.</summary>
        public double PlanNormalizationValue
        {
            get { return NormalizationValue; }
            set
            {
                CheckWritable();
                if (double.IsNaN(value) || double.IsInfinity(value) || value <= 0.0)
                    throw new ArgumentOutOfRangeException("value", "The plan normalization value must be a positive percentage.");
                NormalizationValue = value;
            }
        }

        internal override double DoseScale
        {
            get { return double.IsNaN(NormalizationValue) ? 1.0 : 100.0 / NormalizationValue; }
        }

        internal override DoseValue.DoseUnit SystemUnit { get { return DosePerFractionValue.Unit; } }

        internal override double PrescriptionGy
        {
            get
            {
                double total = TotalDose.Dose;
                return SystemUnit == DoseValue.DoseUnit.cGy ? total / 100.0 : total;
            }
        }

        internal void CheckWritable()
        {
            if (Approval != PlanSetupApprovalStatus.UnApproved)
                throw new InvalidOperationException("The plan is not unapproved: it cannot be modified.");
            Patient patient = CourseValue == null ? null : CourseValue.PatientRef;
            if (patient == null || !patient.ModificationsBegun)
                throw new InvalidOperationException("Modifications are not enabled: call Patient.BeginModifications() first.");
        }
    }
}
