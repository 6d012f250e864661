using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>A ledger entry's span: the first run of its current unbroken stretch, and the last run it held in (null while it holds).</summary>
public sealed record LedgerHistory(string Id, int HeldSince, int? LastHeld, int CellsNow);
