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
        internal readonly List<PlanSetup> PlanList = new List<PlanSetup>();

        /// <summary>Copies a plan into this course (objectives, parameters, beams, structure set and
        /// prescription; not its dose). The copy is UnApproved and gets an automatic Id, which the
        /// caller may change through PlanSetup.Id. Needs BeginModifications().</summary>
        public PlanSetup CopyPlanSetup(PlanSetup sourcePlan)
        {
            if (sourcePlan == null)
                throw new ArgumentNullException("sourcePlan");
            if (PatientRef == null || !PatientRef.ModificationsBegun)
                throw new InvalidOperationException("Modifications are not enabled: call Patient.BeginModifications() first.");
            var source = sourcePlan as ExternalPlanSetup;
            if (source == null)
                throw new InvalidOperationException("Only external beam plans can be copied by the stubs.");
            string id = source.Id;
            for (int n = 1; PlanList.Any(p => p.Id == id); n++)
                id = source.Id.Length > 11 ? source.Id.Substring(0, 11) + n : source.Id + n;
            var copy = new ExternalPlanSetup(id, this, source.DosePerFractionValue, source.Fractions, source.IsVmat);
            copy.StructureSetValue = source.StructureSetValue;
            copy.BeamList.AddRange(source.BeamList);
            copy.OptimizationSetupValue.ObjectiveList.AddRange(source.OptimizationSetupValue.ObjectiveList);
            copy.OptimizationSetupValue.ParameterList.AddRange(source.OptimizationSetupValue.ParameterList);
            copy.OptimizationSetupValue.JawTracking = source.OptimizationSetupValue.JawTracking;
            copy.Backend = source.Backend;
            PlanList.Add(copy);
            return copy;
        }
    }

    public class User : ApiDataObject
    {
        internal User(string id, string name) : base(id)
        {
            NameValue = name;
        }

        internal string NameValue;

        public string Name { get { return NameValue; } }
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
