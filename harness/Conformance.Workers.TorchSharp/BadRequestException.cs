using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

sealed class BadRequestException(string message) : Exception(message);
