using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Conformance.Protocol;

public static class Ops
{
    public const string Hello = "hello";
    public const string Listing = "listing";
    public const string Produce = "produce";
    public const string Consume = "consume";
    public const string ProduceCheckpoint = "produce_checkpoint";
    public const string ConsumeCheckpoint = "consume_checkpoint";
    public const string Shutdown = "shutdown";
}
