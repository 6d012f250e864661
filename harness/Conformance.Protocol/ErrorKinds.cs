using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Conformance.Protocol;

public static class ErrorKinds
{
    /// <summary>The artifact could not be read back.</summary>
    public const string LoadError = "load_error";
    /// <summary>The artifact could not be written.</summary>
    public const string SaveError = "save_error";
    /// <summary>The runtime lacks the capability the cell needs (a load mode, a dtype, a route).</summary>
    public const string NotApplicable = "not_applicable";
    /// <summary>The request itself was malformed or named an unknown case, route or op.</summary>
    public const string BadRequest = "bad_request";
    /// <summary>Anything else raised inside the worker.</summary>
    public const string RuntimeError = "runtime_error";
}
