// Typed errors of the bridge. Every ESAPI exception is caught at the bridge's public surface
// and returned as one of these kinds (the Python adapter maps them to esapi_bridge.errors).
using System;
using VMS.TPS.Common.Model.Types;

namespace Rtplan.Bridge
{
    public static class ErrorKinds
    {
        public const string WrongThread = "WrongThread";
        public const string PlanLocked = "PlanLocked";
        public const string UnknownStructure = "UnknownStructure";
        public const string EmptyStructure = "EmptyStructure";
        public const string InvalidObjective = "InvalidObjective";
        public const string InvalidInput = "InvalidInput";
        public const string OptimizationFailed = "OptimizationFailed";
        public const string DoseUnavailable = "DoseUnavailable";
        public const string UnitError = "UnitError";
        public const string EsapiError = "EsapiError";
    }

    /// <summary>An error the bridge raises itself, with its kind.</summary>
    public sealed class BridgeException : Exception
    {
        public BridgeException(string kind, string message) : base(message)
        {
            Kind = kind;
        }

        public BridgeException(string kind, string message, string structureId, string[] available)
            : base(message)
        {
            Kind = kind;
            StructureId = structureId;
            Available = available;
        }

        public string Kind { get; private set; }

        /// <summary>The structure an UnknownStructure error is about, and the ones the plan has.</summary>
        public string StructureId { get; private set; }

        public string[] Available { get; private set; }
    }

    /// <summary>Gy at the boundary, the system's unit (Gy or cGy) inside ESAPI.</summary>
    public sealed class DoseUnits
    {
        public DoseUnits(DoseValue.DoseUnit systemUnit)
        {
            if (systemUnit != DoseValue.DoseUnit.Gy && systemUnit != DoseValue.DoseUnit.cGy)
                throw new BridgeException(ErrorKinds.UnitError,
                    "the system dose unit must be Gy or cGy, got " + systemUnit);
            SystemUnit = systemUnit;
        }

        public DoseValue.DoseUnit SystemUnit { get; private set; }

        /// <summary>System units per Gy (1 or 100).</summary>
        public double PerGy { get { return SystemUnit == DoseValue.DoseUnit.cGy ? 100.0 : 1.0; } }

        public DoseValue FromGy(double doseGy)
        {
            return new DoseValue(doseGy * PerGy, SystemUnit);
        }

        public double ToGy(DoseValue dose)
        {
            switch (dose.Unit)
            {
                case DoseValue.DoseUnit.Gy: return dose.Dose;
                // rounded to 1e-10 Gy so that 6180 cGy reads 61.8 Gy, not 61.800000000000004
                case DoseValue.DoseUnit.cGy: return Math.Round(dose.Dose / 100.0, 10);
                default:
                    throw new BridgeException(ErrorKinds.UnitError,
                        "expected an absolute dose (Gy or cGy), got unit " + dose.Unit);
            }
        }
    }
}
