// ESAPI 15.6 stub: optimization objectives, parameters and OptimizationSetup. Objective
// properties are read-only (replace = remove + add); the NTO is a parameter.
using System;
using System.Collections.Generic;
using System.Linq;
using VMS.TPS.Common.Model.Types;

namespace VMS.TPS.Common.Model.API
{
    public abstract class OptimizationObjective : SerializableObject
    {
        internal OptimizationObjective(Structure structure, OptimizationObjectiveOperator op, double priority)
        {
            StructureValue = structure;
            OperatorValue = op;
            PriorityValue = priority;
        }

        internal Structure StructureValue;
        internal OptimizationObjectiveOperator OperatorValue;
        internal double PriorityValue;

        public Structure Structure { get { return StructureValue; } }

        public string StructureId { get { return StructureValue.Id; } }

        public OptimizationObjectiveOperator Operator { get { return OperatorValue; } }

        public double Priority { get { return PriorityValue; } }
    }

    public class OptimizationPointObjective : OptimizationObjective
    {
        internal OptimizationPointObjective(
            Structure structure, OptimizationObjectiveOperator op, DoseValue dose, double volume, double priority)
            : base(structure, op, priority)
        {
            DoseValueField = dose;
            VolumeValue = volume;
        }

        internal DoseValue DoseValueField;
        internal double VolumeValue;

        public DoseValue Dose { get { return DoseValueField; } }

        /// <summary>Volume in percent (0-100).</summary>
        public double Volume { get { return VolumeValue; } }
    }

    public class OptimizationMeanDoseObjective : OptimizationObjective
    {
        internal OptimizationMeanDoseObjective(
            Structure structure, OptimizationObjectiveOperator op, DoseValue dose, double priority)
            : base(structure, op, priority)
        {
            DoseValueField = dose;
        }

        internal DoseValue DoseValueField;

        public DoseValue Dose { get { return DoseValueField; } }
    }

    public class OptimizationEUDObjective : OptimizationObjective
    {
        internal OptimizationEUDObjective(
            Structure structure, OptimizationObjectiveOperator op, DoseValue dose, double parameterA, double priority)
            : base(structure, op, priority)
        {
            DoseValueField = dose;
            ParameterAValue = parameterA;
        }

        internal DoseValue DoseValueField;
        internal double ParameterAValue;

        public DoseValue Dose { get { return DoseValueField; } }

        public double ParameterA { get { return ParameterAValue; } }
    }

    public class OptimizationLineObjective : OptimizationObjective
    {
        internal OptimizationLineObjective(
            Structure structure, OptimizationObjectiveOperator op, DVHPoint[] curve, double priority)
            : base(structure, op, priority)
        {
            Curve = curve;
        }

        internal DVHPoint[] Curve;

        public DVHPoint[] CurveData { get { return Curve; } }
    }

    public abstract class OptimizationParameter : SerializableObject
    {
        internal OptimizationParameter()
        {
        }
    }

    public class OptimizationNormalTissueParameter : OptimizationParameter
    {
        internal OptimizationNormalTissueParameter(
            double priority, double distanceMm, double startPct, double endPct, double fallOff, bool automatic)
        {
            PriorityValue = priority;
            Distance = distanceMm;
            Start = startPct;
            End = endPct;
            FallOffValue = fallOff;
            Automatic = automatic;
        }

        internal double PriorityValue, Distance, Start, End, FallOffValue;
        internal bool Automatic;

        public double DistanceFromTargetBorderInMM { get { return Distance; } }

        public double StartDosePercentage { get { return Start; } }

        public double EndDosePercentage { get { return End; } }

        public double FallOff { get { return FallOffValue; } }

        public double Priority { get { return PriorityValue; } }

        public bool IsAutomatic { get { return Automatic; } }
    }

    public class OptimizationIMRTBeamParameter : OptimizationParameter
    {
        internal OptimizationIMRTBeamParameter()
        {
        }
    }

    public class OptimizationJawTrackingUsedParameter : OptimizationParameter
    {
        internal OptimizationJawTrackingUsedParameter()
        {
        }
    }

    public class OptimizationPointCloudParameter : OptimizationParameter
    {
        internal OptimizationPointCloudParameter()
        {
        }
    }

    public class OptimizationExcludeStructureParameter : OptimizationParameter
    {
        internal OptimizationExcludeStructureParameter()
        {
        }
    }

    public class OptimizationSetup : SerializableObject
    {
        internal OptimizationSetup(PlanSetup plan)
        {
            Plan = plan;
        }

        internal readonly PlanSetup Plan;
        internal readonly List<OptimizationObjective> ObjectiveList = new List<OptimizationObjective>();
        internal readonly List<OptimizationParameter> ParameterList = new List<OptimizationParameter>();
        internal bool JawTracking;

        /// <summary>A snapshot; the real collection must not be modified while enumerated.</summary>
        public IEnumerable<OptimizationObjective> Objectives { get { return ObjectiveList.ToArray(); } }

        public IEnumerable<OptimizationParameter> Parameters { get { return ParameterList.ToArray(); } }

        public bool UseJawTracking { get { return JawTracking; } set { Plan.CheckWritable(); JawTracking = value; } }

        private void CheckStructure(Structure structure)
        {
            if (structure == null)
                throw new ArgumentNullException("structure");
            if (!Plan.StructureSet.StructureList.Contains(structure))
                throw new ArgumentException("The structure does not belong to the structure set of the plan.");
        }

        private void CheckDose(DoseValue dose)
        {
            if (dose.Unit != Plan.TotalDose.Unit)
                throw new ArgumentException("The dose unit does not match the system dose unit.");
            if (double.IsNaN(dose.Dose) || dose.Dose < 0.0)
                throw new ArgumentOutOfRangeException("dose");
        }

        private T Add<T>(T objective) where T : OptimizationObjective
        {
            ObjectiveList.Add(objective);
            return objective;
        }

        public OptimizationPointObjective AddPointObjective(
            Structure structure, OptimizationObjectiveOperator objectiveOperator, DoseValue dose, double volume, double priority)
        {
            Plan.CheckWritable();
            CheckStructure(structure);
            CheckDose(dose);
            if (volume < 0.0 || volume > 100.0)
                throw new ArgumentOutOfRangeException("volume");
            return Add(new OptimizationPointObjective(structure, objectiveOperator, dose, volume, priority));
        }

        public OptimizationMeanDoseObjective AddMeanDoseObjective(Structure structure, DoseValue dose, double priority)
        {
            Plan.CheckWritable();
            CheckStructure(structure);
            CheckDose(dose);
            // A mean-dose objective carries no operator (an assumption of the stubs, see the README).
            return Add(new OptimizationMeanDoseObjective(structure, OptimizationObjectiveOperator.None, dose, priority));
        }

        public OptimizationEUDObjective AddEUDObjective(
            Structure structure, OptimizationObjectiveOperator objectiveOperator, DoseValue dose, double parameterA, double priority)
        {
            Plan.CheckWritable();
            CheckStructure(structure);
            CheckDose(dose);
            return Add(new OptimizationEUDObjective(structure, objectiveOperator, dose, parameterA, priority));
        }

        public OptimizationNormalTissueParameter AddNormalTissueObjective(
            double priority, double distanceFromTargetBorderInMM, double startDosePercentage, double endDosePercentage, double fallOff)
        {
            Plan.CheckWritable();
            ParameterList.RemoveAll(p => p is OptimizationNormalTissueParameter);
            var nto = new OptimizationNormalTissueParameter(
                priority, distanceFromTargetBorderInMM, startDosePercentage, endDosePercentage, fallOff, false);
            ParameterList.Add(nto);
            return nto;
        }

        public OptimizationNormalTissueParameter AddAutomaticNormalTissueObjective(double priority)
        {
            Plan.CheckWritable();
            ParameterList.RemoveAll(p => p is OptimizationNormalTissueParameter);
            var nto = new OptimizationNormalTissueParameter(priority, 0.0, 0.0, 0.0, 0.0, true);
            ParameterList.Add(nto);
            return nto;
        }

        public void RemoveObjective(OptimizationObjective objective)
        {
            Plan.CheckWritable();
            if (!ObjectiveList.Remove(objective))
                throw new ArgumentException("The objective does not belong to this optimization setup.");
        }

        public void RemoveParameter(OptimizationParameter parameter)
        {
            Plan.CheckWritable();
            if (!ParameterList.Remove(parameter))
                throw new ArgumentException("The parameter does not belong to this optimization setup.");
        }
    }
}
