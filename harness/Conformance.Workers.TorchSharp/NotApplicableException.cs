using System.Text;
using Conformance.Protocol;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>The runtime lacks a capability the cell needs.</summary>
public sealed class NotApplicableException(string message) : Exception(message);
