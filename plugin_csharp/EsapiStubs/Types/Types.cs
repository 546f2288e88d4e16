// ESAPI 15.6 stub: VMS.TPS.Common.Model.Types (values and enums), only the members that
// docs/ESAPI.md lists as present in 15.6. Names, enum values and signatures follow the real API.
using System;
using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Rtplan.EsapiStubs.Testing")]
[assembly: InternalsVisibleTo("VMS.TPS.Common.Model.API")]

namespace VMS.TPS.Common.Model.Types
{
    /// <summary>A dose with its unit (Gy, cGy or percent).</summary>
    public struct DoseValue
    {
        /// <summary>Units of a dose value.</summary>
        public enum DoseUnit
        {
            Unknown,
            Gy,
            cGy,
            Percent,
        }

        private readonly double _dose;
        private readonly DoseUnit _unit;

        public DoseValue(double value, DoseUnit unit)
        {
            _dose = value;
            _unit = unit;
        }

        public DoseValue(double value, string unitName)
        {
            _dose = value;
            switch (unitName)
            {
                case "Gy": _unit = DoseUnit.Gy; break;
                case "cGy": _unit = DoseUnit.cGy; break;
                case "%": _unit = DoseUnit.Percent; break;
                default: _unit = DoseUnit.Unknown; break;
            }
        }

        public double Dose { get { return _dose; } }

        public DoseUnit Unit { get { return _unit; } }
    }

    public enum DoseValuePresentation
    {
        Relative,
        Absolute,
    }

    public enum VolumePresentation
    {
        Relative,
        AbsoluteCm3,
    }

    /// <summary>A point of a DVH curve.</summary>
    public struct DVHPoint
    {
        private readonly DoseValue _dose;
        private readonly double _volume;
        private readonly string _volumeUnit;

        public DVHPoint(DoseValue dose, double volume, string volumeUnit)
        {
            _dose = dose;
            _volume = volume;
            _volumeUnit = volumeUnit;
        }

        public DoseValue DoseValue { get { return _dose; } }

        public double Volume { get { return _volume; } }

        public string VolumeUnit { get { return _volumeUnit; } }
    }

    public enum OptimizationObjectiveOperator
    {
        Upper = 0,
        Lower = 1,
        Exact = 2,
        None = 99,
    }

    public enum OptimizationOption
    {
        RestartOptimization = 0,
        ContinueOptimization = 1,
        ContinueOptimizationWithPlanDoseAsIntermediateDose = 2,
    }

    public enum OptimizationConvergenceOption
    {
        NoEarlyTermination = 0,
        TerminateIfConverged = 1,
    }

    public enum OptimizationIntermediateDoseOption
    {
        NoIntermediateDose = 0,
        UseIntermediateDose = 1,
    }

    public enum PlanSetupApprovalStatus
    {
        Rejected = 0,
        UnApproved = 1,
        Reviewed = 2,
        PlanningApproved = 3,
        TreatmentApproved = 4,
        CompletedEarly = 5,
        Completed = 6,
        Retired = 7,
        UnPlannedTreatment = 8,
        ExternallyApproved = 9,
        Unknown = 999,
    }

    /// <summary>Base of the optimization option sets.</summary>
    public abstract class OptimizationOptionsBase
    {
        internal OptimizationOptionsBase(OptimizationOption initialState, string mlcId)
        {
            InitialState = initialState;
            MLC = mlcId;
        }

        internal OptimizationOption InitialState { get; private set; }

        internal string MLC { get; private set; }
    }

    /// <summary>Options of an IMRT optimization.</summary>
    public class OptimizationOptionsIMRT : OptimizationOptionsBase
    {
        public OptimizationOptionsIMRT(
            int maxIterations,
            OptimizationOption initialState,
            OptimizationConvergenceOption convergenceOption,
            string mlcId)
            : base(initialState, mlcId)
        {
            MaxIterations = maxIterations;
        }

        public OptimizationOptionsIMRT(
            int maxIterations,
            OptimizationOption initialState,
            OptimizationConvergenceOption convergenceOption,
            int numberOfStepsBeforeIntermediateDose,
            string mlcId)
            : this(maxIterations, initialState, convergenceOption, mlcId)
        {
        }

        public OptimizationOptionsIMRT(
            int maxIterations,
            OptimizationOption initialState,
            OptimizationConvergenceOption convergenceOption,
            OptimizationIntermediateDoseOption intermediateDoseOption,
            string mlcId)
            : this(maxIterations, initialState, convergenceOption, mlcId)
        {
        }

        internal int MaxIterations { get; private set; }
    }

    /// <summary>Options of a VMAT optimization.</summary>
    public class OptimizationOptionsVMAT : OptimizationOptionsBase
    {
        public OptimizationOptionsVMAT(OptimizationOption startOption, string mlcId)
            : base(startOption, mlcId)
        {
        }

        public OptimizationOptionsVMAT(OptimizationIntermediateDoseOption intermediateDoseOption, string mlcId)
            : base(OptimizationOption.RestartOptimization, mlcId)
        {
        }

        public OptimizationOptionsVMAT(int numberOfCycles, string mlcId)
            : base(OptimizationOption.RestartOptimization, mlcId)
        {
        }
    }
}
