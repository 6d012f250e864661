using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Protocol;
using Conformance.Workers.TorchSharp;
using Conformance.Workers.TorchSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

sealed class BadRequestException(string message) : Exception(message);
