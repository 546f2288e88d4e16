// PlanBridge: optimization objectives and the normal tissue objective. Objective properties are
// read-only in ESAPI, so replacing = remove + add; line objectives are read and kept; the NTO is
// an OptimizationNormalTissueParameter in OptimizationSetup.Parameters (other parameters are left alone).
using System;
using System.Collections.Generic;
using System.Linq;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.Bridge
{
    public sealed partial class PlanBridge
    {
        private static OptimizationObjectiveOperator ParseOperator(string name)
        {
            switch (name)
            {
                case "Upper": return OptimizationObjectiveOperator.Upper;
                case "Lower": return OptimizationObjectiveOperator.Lower;
                case "Exact": return OptimizationObjectiveOperator.Exact;
                case "None": return OptimizationObjectiveOperator.None;
                default:
                    throw new BridgeException(ErrorKinds.InvalidObjective, "unknown objective operator " + (name ?? "null"));
            }
        }

        private ObjectiveData Describe(OptimizationObjective o, DoseUnits units)
        {
            var data = new ObjectiveData
            {
                StructureId = o.StructureId,
                Operator = o.Operator.ToString(),
                Priority = o.Priority,
            };
            var point = o as OptimizationPointObjective;
            var mean = o as OptimizationMeanDoseObjective;
            var eud = o as OptimizationEUDObjective;
            var line = o as OptimizationLineObjective;
            if (point != null)
            {
                data.Kind = "point";
                data.DoseGy = units.ToGy(point.Dose);
                data.VolumePct = point.Volume;
            }
            else if (mean != null)
            {
                data.Kind = "mean";
                data.DoseGy = units.ToGy(mean.Dose);
            }
            else if (eud != null)
            {
                data.Kind = "geud";
                data.DoseGy = units.ToGy(eud.Dose);
                data.ParameterA = eud.ParameterA;
            }
            else if (line != null)
            {
                data.Kind = "line";
                data.CurveDoseGy = line.CurveData.Select(p => units.ToGy(p.DoseValue)).ToArray();
                data.CurveVolumePct = line.CurveData.Select(p => p.Volume).ToArray();
            }
            else
            {
                data.Kind = "unknown:" + o.GetType().Name;
            }
            return data;
        }

        private static ObjectiveData Describe(OptimizationNormalTissueParameter p)
        {
            return new ObjectiveData
            {
                Kind = "nto",
                Priority = p.Priority,
                IsAutomatic = p.IsAutomatic,
                DistanceMm = p.DistanceFromTargetBorderInMM,
                StartDosePct = p.StartDosePercentage,
                EndDosePct = p.EndDosePercentage,
                FallOff = p.FallOff,
            };
        }

        private List<ObjectiveData> ReadObjectives()
        {
            DoseUnits units = Units();
            OptimizationSetup setup = _plan.OptimizationSetup;
            var result = setup.Objectives.Select(o => Describe(o, units)).ToList();
            result.AddRange(setup.Parameters.OfType<OptimizationNormalTissueParameter>().Select(Describe));
            return result;
        }

        /// <summary>Every objective (line objectives included) and the NTO, if any.</summary>
        public string GetObjectives()
        {
            return Call(() => ReadObjectives());
        }

        private static double Required(double? value, string field, ObjectiveData o)
        {
            if (!value.HasValue || double.IsNaN(value.Value) || double.IsInfinity(value.Value))
                throw new BridgeException(ErrorKinds.InvalidObjective, string.Format(
                    "{0} objective on '{1}' needs a finite {2}", o.Kind, o.StructureId, field));
            return value.Value;
        }

        private void Validate(ObjectiveData o)
        {
            if (double.IsNaN(o.Priority) || o.Priority < 0.0)
                throw new BridgeException(ErrorKinds.InvalidObjective, "priority must be >= 0, got " + o.Priority);
            switch (o.Kind)
            {
                case "nto":
                    if (o.IsAutomatic != true)
                    {
                        Required(o.DistanceMm, "distance_from_target_border_mm", o);
                        Required(o.StartDosePct, "start_dose_pct", o);
                        Required(o.EndDosePct, "end_dose_pct", o);
                        Required(o.FallOff, "fall_off", o);
                    }
                    return;
                case "point":
                    ParseOperator(o.Operator);
                    double v = Required(o.VolumePct, "volume_pct", o);
                    if (v < 0.0 || v > 100.0)
                        throw new BridgeException(ErrorKinds.InvalidObjective, "volume_pct must be within 0..100, got " + v);
                    break;
                case "mean":
                    break;
                case "geud":
                    ParseOperator(o.Operator);
                    Required(o.ParameterA, "parameter_a", o);
                    break;
                case "line":
                    throw new BridgeException(ErrorKinds.InvalidObjective,
                        "line objectives are kept as they are; they cannot be written through the bridge");
                default:
                    throw new BridgeException(ErrorKinds.InvalidObjective, "unknown objective kind " + (o.Kind ?? "null"));
            }
            if (Required(o.DoseGy, "dose_gy", o) < 0.0)
                throw new BridgeException(ErrorKinds.InvalidObjective, "dose_gy must be >= 0, got " + o.DoseGy);
            FindStructure(o.StructureId, true);
        }

        private void Add(ObjectiveData o, DoseUnits units)
        {
            OptimizationSetup setup = _plan.OptimizationSetup;
            if (o.Kind == "nto")
            {
                if (o.IsAutomatic == true)
                    setup.AddAutomaticNormalTissueObjective(o.Priority);
                else
                    setup.AddNormalTissueObjective(o.Priority, o.DistanceMm.Value, o.StartDosePct.Value,
                        o.EndDosePct.Value, o.FallOff.Value);
                return;
            }
            Structure s = FindStructure(o.StructureId, true);
            DoseValue dose = units.FromGy(o.DoseGy.Value);
            switch (o.Kind)
            {
                case "point":
                    setup.AddPointObjective(s, ParseOperator(o.Operator), dose, o.VolumePct.Value, o.Priority);
                    break;
                case "mean":
                    setup.AddMeanDoseObjective(s, dose, o.Priority);
                    break;
                case "geud":
                    setup.AddEUDObjective(s, ParseOperator(o.Operator), dose, o.ParameterA.Value, o.Priority);
                    break;
            }
        }

        private void RemoveReplaceable()
        {
            OptimizationSetup setup = _plan.OptimizationSetup;
            // copy the collections before removing from them
            // only the kinds the bridge can add back: line objectives (and any other kind) stay
            foreach (OptimizationObjective o in setup.Objectives.ToList())
                if (o is OptimizationPointObjective || o is OptimizationMeanDoseObjective || o is OptimizationEUDObjective)
                    setup.RemoveObjective(o);
            foreach (OptimizationParameter p in setup.Parameters.OfType<OptimizationNormalTissueParameter>().ToList())
                setup.RemoveParameter(p);
        }

        /// <summary>Replace every point, mean and gEUD objective and the NTO; line objectives and
        /// other parameters stay. All-or-nothing: validated first, the old set restored on failure.</summary>
        public string SetObjectives(string objectivesJson)
        {
            return Call(() =>
            {
                List<ObjectiveData> wanted;
                try
                {
                    wanted = Json.Read<List<ObjectiveData>>(objectivesJson) ?? new List<ObjectiveData>();
                }
                catch (Exception e)
                {
                    throw new BridgeException(ErrorKinds.InvalidObjective, "malformed objectives: " + e.Message);
                }
                if (wanted.Count(o => o.Kind == "nto") > 1)
                    throw new BridgeException(ErrorKinds.InvalidObjective, "at most one normal tissue objective");
                foreach (ObjectiveData o in wanted)
                    Validate(o);
                BeginWrite("replacing the objectives");
                DoseUnits units = Units();
                List<ObjectiveData> previous = ReadObjectives()
                    .Where(o => o.Kind == "point" || o.Kind == "mean" || o.Kind == "geud" || o.Kind == "nto")
                    .ToList();
                RemoveReplaceable();
                try
                {
                    foreach (ObjectiveData o in wanted)
                        Add(o, units);
                }
                catch (Exception e)
                {
                    RemoveReplaceable();
                    foreach (ObjectiveData o in previous)
                        Add(o, units);
                    throw new BridgeException(ErrorKinds.InvalidObjective, string.Format(
                        "ESAPI refused an objective ({0}: {1}); the previous objectives were restored",
                        e.GetType().Name, e.Message));
                }
                return ReadObjectives();
            });
        }
    }
}
