// The stubs' optimizer and dose calculation, delegated to handlers set from Python. The request
// carries the objectives and the NTO in Gy, so the handler can hand them to the simulated TPS.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.EsapiStubs.Testing
{
    [DataContract]
    public sealed class StubObjective
    {
        [DataMember(Name = "kind")] public string Kind;
        [DataMember(Name = "structure_id", EmitDefaultValue = false)] public string StructureId;
        [DataMember(Name = "operator", EmitDefaultValue = false)] public string Operator;
        [DataMember(Name = "dose_gy", EmitDefaultValue = false)] public double? DoseGy;
        [DataMember(Name = "volume_pct", EmitDefaultValue = false)] public double? VolumePct;
        [DataMember(Name = "parameter_a", EmitDefaultValue = false)] public double? ParameterA;
        [DataMember(Name = "priority")] public double Priority;
        [DataMember(Name = "distance_from_target_border_mm", EmitDefaultValue = false)] public double? DistanceMm;
        [DataMember(Name = "start_dose_pct", EmitDefaultValue = false)] public double? StartDosePct;
        [DataMember(Name = "end_dose_pct", EmitDefaultValue = false)] public double? EndDosePct;
        [DataMember(Name = "fall_off", EmitDefaultValue = false)] public double? FallOff;
        [DataMember(Name = "is_automatic", EmitDefaultValue = false)] public bool? IsAutomatic;
    }

    [DataContract]
    public sealed class StubOptimizeRequest
    {
        [DataMember(Name = "vmat")] public bool Vmat;
        [DataMember(Name = "option")] public string Option;
        [DataMember(Name = "max_iterations")] public int MaxIterations;
        [DataMember(Name = "normalization_value_pct")] public double? NormalizationValuePct;
        [DataMember(Name = "objectives")] public List<StubObjective> Objectives;
    }

    [DataContract]
    public sealed class StubStructureValue
    {
        [DataMember(Name = "structure_id")] public string StructureId;
        [DataMember(Name = "value")] public double Value;
    }

    [DataContract]
    public sealed class StubOptimizeResult
    {
        [DataMember(Name = "success")] public bool Success;
        [DataMember(Name = "total")] public double Total;
        [DataMember(Name = "iterations")] public int Iterations;
        [DataMember(Name = "structure_values")] public List<StubStructureValue> StructureValues;
        [DataMember(Name = "error")] public string Error;
    }

    [DataContract]
    public sealed class StubDvh
    {
        [DataMember(Name = "dose_gy")] public double[] DoseGy;
        [DataMember(Name = "volume_pct")] public double[] VolumePct;
        [DataMember(Name = "min_gy")] public double MinGy;
        [DataMember(Name = "mean_gy")] public double MeanGy;
        [DataMember(Name = "max_gy")] public double MaxGy;
    }

    internal sealed class DelegateBackend : IStubBackend
    {
        private readonly OptimizeHandler _optimize;
        private readonly DoseHandler _dose;
        private readonly DvhHandler _dvh;

        internal DelegateBackend(OptimizeHandler optimize, DoseHandler dose, DvhHandler dvh)
        {
            _optimize = optimize;
            _dose = dose;
            _dvh = dvh;
        }

        private static string Write<T>(T value)
        {
            using (var stream = new MemoryStream())
            {
                new DataContractJsonSerializer(typeof(T)).WriteObject(stream, value);
                return Encoding.UTF8.GetString(stream.ToArray());
            }
        }

        private static T Read<T>(string json)
        {
            using (var stream = new MemoryStream(Encoding.UTF8.GetBytes(json)))
                return (T)new DataContractJsonSerializer(typeof(T)).ReadObject(stream);
        }

        private static double Gy(DoseValue d)
        {
            return d.Unit == DoseValue.DoseUnit.cGy ? d.Dose / 100.0 : d.Dose;
        }

        private static StubObjective Describe(OptimizationObjective o)
        {
            var s = new StubObjective { StructureId = o.StructureId, Operator = o.Operator.ToString(), Priority = o.Priority };
            var point = o as OptimizationPointObjective;
            var mean = o as OptimizationMeanDoseObjective;
            var eud = o as OptimizationEUDObjective;
            if (point != null) { s.Kind = "point"; s.DoseGy = Gy(point.Dose); s.VolumePct = point.Volume; }
            else if (mean != null) { s.Kind = "mean"; s.DoseGy = Gy(mean.Dose); }
            else if (eud != null) { s.Kind = "geud"; s.DoseGy = Gy(eud.Dose); s.ParameterA = eud.ParameterA; }
            else s.Kind = "line";
            return s;
        }

        public StubOptimizationOutcome Optimize(ExternalPlanSetup plan, OptimizationOption option, int maxIterations, bool vmat)
        {
            var objectives = plan.OptimizationSetup.Objectives.Select(Describe).ToList();
            foreach (var nto in plan.OptimizationSetup.Parameters.OfType<OptimizationNormalTissueParameter>())
                objectives.Add(new StubObjective
                {
                    Kind = "nto", Priority = nto.Priority, DistanceMm = nto.DistanceFromTargetBorderInMM,
                    StartDosePct = nto.StartDosePercentage, EndDosePct = nto.EndDosePercentage,
                    FallOff = nto.FallOff, IsAutomatic = nto.IsAutomatic,
                });
            double norm = plan.PlanNormalizationValue;
            var request = new StubOptimizeRequest
            {
                Vmat = vmat,
                Option = option.ToString(),
                MaxIterations = maxIterations,
                NormalizationValuePct = double.IsNaN(norm) ? (double?)null : norm,
                Objectives = objectives,
            };
            StubOptimizeResult result = Read<StubOptimizeResult>(_optimize(Write(request)));
            if (!string.IsNullOrEmpty(result.Error))
                throw new InvalidOperationException(result.Error);
            var outcome = new StubOptimizationOutcome
            {
                Success = result.Success,
                Total = result.Total,
                Iterations = result.Iterations,
            };
            foreach (StubStructureValue v in result.StructureValues ?? new List<StubStructureValue>())
                outcome.StructureValues[v.StructureId] = v.Value;
            return outcome;
        }

        public bool CalculateDose(ExternalPlanSetup plan)
        {
            return _dose();
        }

        public StubCurve RawDvh(Structure structure)
        {
            string json = _dvh(structure.Id);
            if (string.IsNullOrEmpty(json))
                return null;
            StubDvh dvh = Read<StubDvh>(json);
            return new StubCurve
            {
                DoseGy = dvh.DoseGy,
                VolumePct = dvh.VolumePct,
                MinGy = dvh.MinGy,
                MeanGy = dvh.MeanGy,
                MaxGy = dvh.MaxGy,
            };
        }
    }
}
