// PlanBridge: the only code that touches VMS.TPS.Common.Model.API. Every public method returns a
// JSON envelope {"ok": true, "value": ...} or {"ok": false, "error": {"kind", "message"}}: every
// exception (ESAPI's included) is caught here and returned typed. Every call must come from the
// thread the bridge was created on (Eclipse's, or the standalone STA thread).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using VMS.TPS.Common.Model.API;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.Bridge
{
    public sealed partial class PlanBridge
    {
        private readonly Patient _patient;
        private readonly ExternalPlanSetup _plan;
        private readonly bool _vmat;
        private readonly int _ownerThreadId;

        /// <param name="patient">The open patient (BeginModifications is called before the first write).</param>
        /// <param name="plan">The external-beam plan to optimize.</param>
        /// <param name="technique">"IMRT" or "VMAT": selects Optimize or OptimizeVMAT.</param>
        public PlanBridge(Patient patient, ExternalPlanSetup plan, string technique)
        {
            if (plan == null)
                throw new ArgumentNullException("plan");
            if (technique != "IMRT" && technique != "VMAT")
                throw new ArgumentException("technique must be IMRT or VMAT, got " + technique);
            _patient = patient;
            _plan = plan;
            _vmat = technique == "VMAT";
            _ownerThreadId = Thread.CurrentThread.ManagedThreadId;
        }

        /// <summary>MLC id for a continued VMAT optimization (OptimizationOptionsVMAT needs one).</summary>
        public string MlcId { get; set; }

        public int OwnerThreadId { get { return _ownerThreadId; } }

        private string Call<T>(Func<T> body)
        {
            var envelope = new Envelope<T>();
            try
            {
                int current = Thread.CurrentThread.ManagedThreadId;
                if (current != _ownerThreadId)
                    throw new BridgeException(ErrorKinds.WrongThread, string.Format(
                        "the bridge was created on managed thread {0}; called from thread {1}",
                        _ownerThreadId, current));
                envelope.Value = body();
                envelope.Ok = true;
            }
            catch (BridgeException e)
            {
                envelope.Error = new BridgeErrorData
                {
                    Kind = e.Kind,
                    Message = e.Message,
                    StructureId = e.StructureId,
                    Available = e.Available,
                };
            }
            catch (Exception e)
            {
                envelope.Error = new BridgeErrorData
                {
                    Kind = ErrorKinds.EsapiError,
                    Message = e.Message,
                    ExceptionType = e.GetType().FullName,
                };
            }
            return Json.Write(envelope);
        }

        private DoseUnits Units()
        {
            return new DoseUnits(_plan.TotalDose.Unit);
        }

        private static double? NullIfNaN(double value)
        {
            return double.IsNaN(value) ? (double?)null : value;
        }

        private Structure FindStructure(string structureId, bool requireVoxels)
        {
            Structure[] all = _plan.StructureSet.Structures.ToArray();
            Structure found = all.FirstOrDefault(s => s.Id == structureId);
            if (found == null)
                throw new BridgeException(ErrorKinds.UnknownStructure, "unknown structure " + structureId,
                    structureId, all.Select(s => s.Id).ToArray());
            if (requireVoxels && found.IsEmpty)
                throw new BridgeException(ErrorKinds.EmptyStructure, string.Format("structure '{0}' is empty", structureId));
            return found;
        }

        private void BeginWrite(string what)
        {
            if (_plan.ApprovalStatus != PlanSetupApprovalStatus.UnApproved)
                throw new BridgeException(ErrorKinds.PlanLocked, string.Format(
                    "the plan is {0}: {1} refused", _plan.ApprovalStatus, what));
            if (_patient != null && !_patient.CanModifyData())
                _patient.BeginModifications();
        }

        public string PlanInfo()
        {
            return Call(() => new PlanInfoData
            {
                PlanId = _plan.Id,
                Technique = _vmat ? "VMAT" : "IMRT",
                TotalDoseGy = Units().ToGy(_plan.TotalDose),
                Fractions = _plan.NumberOfFractions ?? 0,
                DoseUnit = Units().SystemUnit.ToString(),
                ApprovalStatus = _plan.ApprovalStatus.ToString(),
                BeamCount = _plan.Beams.Count(),
                NormalizationValuePct = NullIfNaN(_plan.PlanNormalizationValue),
                IsDoseValid = _plan.IsDoseValid,
            });
        }

        public string Structures()
        {
            return Call(() => _plan.StructureSet.Structures.Select(s => new StructureData
            {
                StructureId = s.Id,
                DicomType = s.DicomType,
                VolumeCm3 = s.Volume,
                IsEmpty = s.IsEmpty,
            }).ToList());
        }

        /// <param name="mode">"restart" or "continue".</param>
        public string Optimize(int maxIterations, string mode)
        {
            return Call(() =>
            {
                if (maxIterations < 1)
                    throw new BridgeException(ErrorKinds.InvalidInput, "max_iterations must be >= 1, got " + maxIterations);
                if (mode != "restart" && mode != "continue")
                    throw new BridgeException(ErrorKinds.InvalidInput, "mode must be restart or continue, got " + mode);
                BeginWrite("optimization");
                OptimizationOption option = mode == "restart"
                    ? OptimizationOption.RestartOptimization
                    : OptimizationOption.ContinueOptimization;
                var clock = Stopwatch.StartNew();
                OptimizerResult result;
                string path;
                try
                {
                    if (!_vmat)
                    {
                        path = "Optimize(int, OptimizationOption)";
                        result = _plan.Optimize(maxIterations, option);
                    }
                    else if (option == OptimizationOption.RestartOptimization || MlcId == null)
                    {
                        // VMAT never goes through Optimize; without an MLC id the options overload is unavailable.
                        path = "OptimizeVMAT()";
                        result = _plan.OptimizeVMAT();
                    }
                    else
                    {
                        path = "OptimizeVMAT(OptimizationOptionsVMAT)";
                        result = _plan.OptimizeVMAT(new OptimizationOptionsVMAT(option, MlcId));
                    }
                }
                catch (Exception e)
                {
                    throw new BridgeException(ErrorKinds.OptimizationFailed,
                        string.Format("the optimizer failed: {0}: {1}", e.GetType().Name, e.Message));
                }
                if (result == null || !result.Success)
                    throw new BridgeException(ErrorKinds.OptimizationFailed, "the optimizer reported no success");
                return new OptimizationData
                {
                    Success = true,
                    TotalObjectiveValue = result.TotalObjectiveFunctionValue,
                    StructureValues = result.StructureObjectiveValues.Select(v => new StructureValueData
                    {
                        StructureId = v.Structure.Id,
                        Value = v.Value,
                    }).ToList(),
                    Iterations = result.NumberOfIMRTOptimizerIterations,
                    WallTimeS = clock.Elapsed.TotalSeconds,
                    Path = path,
                };
            });
        }

        /// <summary>IMRT: CalculateLeafMotionsAndDose(); VMAT: CalculateDose().</summary>
        public string CalculateDose()
        {
            return Call(() =>
            {
                BeginWrite("dose calculation");
                CalculationResult result;
                try
                {
                    result = _vmat ? _plan.CalculateDose() : _plan.CalculateLeafMotionsAndDose();
                }
                catch (Exception e)
                {
                    throw new BridgeException(ErrorKinds.OptimizationFailed,
                        string.Format("the dose calculation failed: {0}: {1}", e.GetType().Name, e.Message));
                }
                if (result == null || !result.Success)
                    throw new BridgeException(ErrorKinds.OptimizationFailed, "the dose calculation reported no success");
                return new NumberData { Number = 1.0 };
            });
        }
    }
}
