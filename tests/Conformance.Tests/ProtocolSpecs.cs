using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Tests;

[Trait("Category", "unit")]
public sealed class ProtocolSpecs
{
    [Fact]
    public void A_request_is_one_line_of_json_with_id_op_and_args()
    {
        var line = Wire.Encode(new Request(7, Ops.Consume, new JsonObject { ["path"] = "a b\nc" }));
        Assert.DoesNotContain('\n', line);
        Assert.Equal("""{"id":7,"op":"consume","args":{"path":"a b\nc"}}""", line);
        var back = Wire.Decode<Request>(line);
        Assert.Equal((7L, "consume", "a b\nc"), (back.Id, back.Op, back.Args!["path"]!.GetValue<string>()));
    }

    [Fact]
    public void A_response_is_a_tagged_union_of_result_or_error()
    {
        var ok = Wire.Decode<Response>("""{"id": 1, "status": "ok", "result": {"a": 1}}""");
        Assert.Equal((Response.Ok, 1), (ok.Status, ok.Result!["a"]!.GetValue<int>()));
        Assert.Null(ok.Error);
        var err = Wire.Decode<Response>("""{"id": 2, "status": "error", "error": {"kind": "load_error", "message": "m.pt: bad"}}""");
        Assert.Equal((Response.Failed, ErrorKinds.LoadError, "m.pt: bad"), (err.Status, err.Error!.Kind, err.Error.Message));
        Assert.Equal("""{"id":3,"status":"error","error":{"kind":"not_applicable","message":"x"}}""",
            Wire.Encode(Response.Failure(3, new WorkerError(ErrorKinds.NotApplicable, "x"))));
    }

    [Fact]
    public void A_line_that_is_not_json_is_refused_with_the_line_quoted()
    {
        var e = Assert.ThrowsAny<JsonException>(() => Wire.Decode<Response>("hello from a stray print"));
        Assert.Contains("\"hello from a stray print\"", e.Message);
        var longLine = "x" + new string('y', 500);
        Assert.Contains(Wire.Truncate(longLine, 200), Assert.ThrowsAny<JsonException>(() => Wire.Decode<Response>(longLine)).Message);
    }
}
