// ESAPI 15.6 stub: VMS.TPS.Common.Model.API objects. Only the public members that
// docs/ESAPI.md lists as present in 15.6, with the real declaring classes (StructureSet, Dose
// and the DVH queries on PlanningItem; Course on PlanSetup). Constructors are internal, as in
// the real API; the test assembly (Rtplan.EsapiStubs.Testing) builds objects through them.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using VMS.TPS.Common.Model.Types;

[assembly: InternalsVisibleTo("Rtplan.EsapiStubs.Testing")]

namespace VMS.TPS.Common.Model.API
{
    public abstract class SerializableObject
    {
        internal SerializableObject()
        {
        }
    }

    public abstract class ApiDataObject : SerializableObject
    {
        internal ApiDataObject(string id)
        {
            IdValue = id;
        }

        internal string IdValue;

        public string Id { get { return IdValue; } }
    }

    public class Patient : ApiDataObject
    {
        internal Patient(string id) : base(id)
        {
        }

        internal bool ModificationsBegun;

        public void BeginModifications()
        {
            ModificationsBegun = true;
        }

        public bool CanModifyData()
        {
            return ModificationsBegun;
        }
    }

    public class Course : ApiDataObject
    {
        internal Course(string id, Patient patient) : base(id)
        {
            PatientRef = patient;
        }

        internal Patient PatientRef;
    }

    public class Structure : ApiDataObject
    {
        internal Structure(string id, string dicomType, double volumeCm3, bool isEmpty) : base(id)
        {
            DicomTypeValue = dicomType;
            VolumeValue = volumeCm3;
            IsEmptyValue = isEmpty;
        }

        internal string DicomTypeValue;
        internal double VolumeValue;
        internal bool IsEmptyValue;

        public string DicomType { get { return DicomTypeValue; } }

        /// <summary>Volume in cm3.</summary>
        public double Volume { get { return VolumeValue; } }

        public bool IsEmpty { get { return IsEmptyValue; } }
    }

    public class StructureSet : ApiDataObject
    {
        internal StructureSet(string id) : base(id)
        {
        }

        internal readonly List<Structure> StructureList = new List<Structure>();

        public IEnumerable<Structure> Structures { get { return StructureList.ToArray(); } }
    }

    public class Dose : ApiDataObject
    {
        internal Dose(string id) : base(id)
        {
        }
    }

    public class Beam : ApiDataObject
    {
        internal Beam(string id) : base(id)
        {
        }
    }

    public class CalculationResult : SerializableObject
    {
        internal CalculationResult(bool success)
        {
            SuccessValue = success;
        }

        internal bool SuccessValue;

        public bool Success { get { return SuccessValue; } }
    }

    public class OptimizerDVH : SerializableObject
    {
        internal OptimizerDVH(Structure structure, DVHPoint[] curve)
        {
            StructureValue = structure;
            CurveValue = curve;
        }

        internal Structure StructureValue;
        internal DVHPoint[] CurveValue;

        public Structure Structure { get { return StructureValue; } }

        public DVHPoint[] CurveData { get { return CurveValue; } }
    }

    public class OptimizerObjectiveValue : SerializableObject
    {
        internal OptimizerObjectiveValue(Structure structure, double value)
        {
            StructureValue = structure;
            ValueValue = value;
        }

        internal Structure StructureValue;
        internal double ValueValue;

        public Structure Structure { get { return StructureValue; } }

        public double Value { get { return ValueValue; } }
    }

    public class OptimizerResult : CalculationResult
    {
        internal OptimizerResult(
            bool success,
            IEnumerable<OptimizerDVH> dvhs,
            IEnumerable<OptimizerObjectiveValue> values,
            double total,
            int iterations)
            : base(success)
        {
            Dvhs = dvhs.ToArray();
            Values = values.ToArray();
            Total = total;
            Iterations = iterations;
        }

        internal OptimizerDVH[] Dvhs;
        internal OptimizerObjectiveValue[] Values;
        internal double Total;
        internal int Iterations;

        public IEnumerable<OptimizerDVH> StructureDVHs { get { return Dvhs; } }

        public IEnumerable<OptimizerObjectiveValue> StructureObjectiveValues { get { return Values; } }

        public double TotalObjectiveFunctionValue { get { return Total; } }

        public int NumberOfIMRTOptimizerIterations { get { return Iterations; } }
    }

    public class DVHData : SerializableObject
    {
        internal DVHData()
        {
        }

        internal DVHPoint[] Curve;
        internal DoseValue Min, Max, Mean, Median;
        internal double StdDevValue, VolumeValue, CoverageValue, SamplingCoverageValue;

        public DVHPoint[] CurveData { get { return Curve; } }

        public DoseValue MinDose { get { return Min; } }

        public DoseValue MaxDose { get { return Max; } }

        public DoseValue MeanDose { get { return Mean; } }

        public DoseValue MedianDose { get { return Median; } }

        public double StdDev { get { return StdDevValue; } }

        /// <summary>Structure volume in cm3.</summary>
        public double Volume { get { return VolumeValue; } }

        public double Coverage { get { return CoverageValue; } }

        public double SamplingCoverage { get { return SamplingCoverageValue; } }
    }
}
