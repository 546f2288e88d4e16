// Plain data crossing the bridge: DataContract classes serialized to JSON with
// DataContractJsonSerializer (part of .NET Framework; no extra JSON assembly that could clash with
// Eclipse's). Doses are in Gy and volumes in percent or cm3, as the member names say.
using System.Collections.Generic;
using System.IO;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;

namespace Rtplan.Bridge
{
    [DataContract]
    public sealed class BridgeErrorData
    {
        [DataMember(Name = "kind")] public string Kind;
        [DataMember(Name = "message")] public string Message;
        [DataMember(Name = "exception_type", EmitDefaultValue = false)] public string ExceptionType;
        [DataMember(Name = "structure_id", EmitDefaultValue = false)] public string StructureId;
        [DataMember(Name = "available", EmitDefaultValue = false)] public string[] Available;
    }

    [DataContract]
    public sealed class Envelope<T>
    {
        [DataMember(Name = "ok")] public bool Ok;
        [DataMember(Name = "value", EmitDefaultValue = false)] public T Value;
        [DataMember(Name = "error", EmitDefaultValue = false)] public BridgeErrorData Error;
    }

    [DataContract]
    public sealed class PlanInfoData
    {
        [DataMember(Name = "plan_id")] public string PlanId;
        [DataMember(Name = "technique")] public string Technique;
        [DataMember(Name = "total_dose_gy")] public double TotalDoseGy;
        [DataMember(Name = "fractions")] public int Fractions;
        [DataMember(Name = "dose_unit")] public string DoseUnit;
        [DataMember(Name = "approval_status")] public string ApprovalStatus;
        [DataMember(Name = "beam_count")] public int BeamCount;
        [DataMember(Name = "normalization_value_pct")] public double? NormalizationValuePct;
        [DataMember(Name = "is_dose_valid")] public bool IsDoseValid;
    }

    [DataContract]
    public sealed class StructureData
    {
        [DataMember(Name = "structure_id")] public string StructureId;
        [DataMember(Name = "dicom_type")] public string DicomType;
        [DataMember(Name = "volume_cm3")] public double VolumeCm3;
        [DataMember(Name = "is_empty")] public bool IsEmpty;
    }

    /// <summary>One objective or the NTO. kind: point, mean, geud, line (read only), nto.</summary>
    [DataContract]
    public sealed class ObjectiveData
    {
        [DataMember(Name = "kind")] public string Kind;
        [DataMember(Name = "structure_id", EmitDefaultValue = false)] public string StructureId;
        [DataMember(Name = "operator", EmitDefaultValue = false)] public string Operator;
        [DataMember(Name = "dose_gy", EmitDefaultValue = false)] public double? DoseGy;
        [DataMember(Name = "volume_pct", EmitDefaultValue = false)] public double? VolumePct;
        [DataMember(Name = "parameter_a", EmitDefaultValue = false)] public double? ParameterA;
        [DataMember(Name = "priority")] public double Priority;
        [DataMember(Name = "curve_dose_gy", EmitDefaultValue = false)] public double[] CurveDoseGy;
        [DataMember(Name = "curve_volume_pct", EmitDefaultValue = false)] public double[] CurveVolumePct;
        [DataMember(Name = "is_automatic", EmitDefaultValue = false)] public bool? IsAutomatic;
        [DataMember(Name = "distance_from_target_border_mm", EmitDefaultValue = false)] public double? DistanceMm;
        [DataMember(Name = "start_dose_pct", EmitDefaultValue = false)] public double? StartDosePct;
        [DataMember(Name = "end_dose_pct", EmitDefaultValue = false)] public double? EndDosePct;
        [DataMember(Name = "fall_off", EmitDefaultValue = false)] public double? FallOff;
    }

    [DataContract]
    public sealed class StructureValueData
    {
        [DataMember(Name = "structure_id")] public string StructureId;
        [DataMember(Name = "value")] public double Value;
    }

    [DataContract]
    public sealed class OptimizationData
    {
        [DataMember(Name = "success")] public bool Success;
        [DataMember(Name = "total_objective_value")] public double TotalObjectiveValue;
        [DataMember(Name = "structure_values")] public List<StructureValueData> StructureValues;
        [DataMember(Name = "iterations")] public int Iterations;
        [DataMember(Name = "wall_time_s")] public double WallTimeS;
        [DataMember(Name = "path")] public string Path;
    }

    [DataContract]
    public sealed class DvhData
    {
        [DataMember(Name = "structure_id")] public string StructureId;
        [DataMember(Name = "volume_cm3")] public double VolumeCm3;
        [DataMember(Name = "dose_gy")] public double[] DoseGy;
        [DataMember(Name = "volume_pct")] public double[] VolumePct;
        [DataMember(Name = "min_dose_gy")] public double MinDoseGy;
        [DataMember(Name = "mean_dose_gy")] public double MeanDoseGy;
        [DataMember(Name = "max_dose_gy")] public double MaxDoseGy;
        [DataMember(Name = "median_dose_gy")] public double MedianDoseGy;
        [DataMember(Name = "bin_width_gy")] public double BinWidthGy;
        [DataMember(Name = "bin_width_system")] public double BinWidthSystem;
    }

    [DataContract]
    public sealed class NormalizationData
    {
        [DataMember(Name = "factor")] public double Factor;
        [DataMember(Name = "normalization_value_pct")] public double? NormalizationValuePct;
    }

    [DataContract]
    public sealed class NumberData
    {
        [DataMember(Name = "number")] public double? Number;
    }

    internal static class Json
    {
        internal static string Write<T>(T value)
        {
            var serializer = new DataContractJsonSerializer(typeof(T));
            using (var stream = new MemoryStream())
            {
                serializer.WriteObject(stream, value);
                return Encoding.UTF8.GetString(stream.ToArray());
            }
        }

        internal static T Read<T>(string json)
        {
            var serializer = new DataContractJsonSerializer(typeof(T));
            using (var stream = new MemoryStream(Encoding.UTF8.GetBytes(json)))
            {
                return (T)serializer.ReadObject(stream);
            }
        }
    }
}
