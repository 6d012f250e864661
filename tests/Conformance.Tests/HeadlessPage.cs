using Conformance.Orchestrator;
using PuppeteerSharp;

namespace Conformance.Tests;

/// <summary>
/// A page opened in Debian's chromium (scripts/provision-host.sh installs it), driven by PuppeteerSharp
/// pointed at that executable, so nothing is downloaded; every console error, page error and failed
/// request is collected for the spec to assert on.
/// </summary>
internal sealed class HeadlessPage : IAsyncDisposable
{
    public const string Chromium = "/usr/bin/chromium";

    private readonly IBrowser _browser;
    private readonly List<string> _errors = [];

    public IPage Page { get; }

    public IReadOnlyList<string> Errors { get { lock (_errors) return [.. _errors]; } }

    private HeadlessPage(IBrowser browser, IPage page)
    {
        _browser = browser;
        Page = page;
        page.Console += (_, e) => { if (e.Message.Type == ConsoleType.Error) lock (_errors) _errors.Add(e.Message.Text); };
        page.PageError += (_, e) => { lock (_errors) _errors.Add(e.Message); };
        page.RequestFailed += (_, e) => { lock (_errors) _errors.Add($"request failed: {e.Request.Url}"); };
    }

    /// <summary>Skips without chromium, or fails under CONFORMANCE_REQUIRE_ALL=1.</summary>
    public static void RequireChromium()
    {
        if (File.Exists(Chromium)) return;
        const string why = $"{Chromium} is missing: run scripts/provision-host.sh (it installs Debian's chromium; CI does)";
        if (Suite.RequireAll) Assert.Fail($"CONFORMANCE_REQUIRE_ALL=1 and {why}");
        Skip.If(true, why);
    }

    /// <summary>Opens <paramref name="file"/>; the browser profile lives under <paramref name="scratch"/>.</summary>
    public static async Task<HeadlessPage> OpenAsync(string file, string scratch)
    {
        RequireChromium();
        var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            // Root cannot use chromium's sandbox; /dev/shm may be small in containers.
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            UserDataDir = Path.Combine(scratch, "profile"),
            Timeout = 60_000,
        });
        var page = await browser.NewPageAsync();
        page.DefaultTimeout = 15_000;
        var opened = new HeadlessPage(browser, page);
        var response = await page.GoToAsync(new Uri(file).AbsoluteUri, WaitUntilNavigation.Load);
        Assert.True(response is null || response.Ok, $"loading {file}: {response?.Status}");
        return opened;
    }

    public async ValueTask DisposeAsync()
    {
        await Page.DisposeAsync();
        await _browser.DisposeAsync();
    }
}
