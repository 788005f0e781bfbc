using MkbVpn.Devices;
using Xunit;

namespace MkbVpn.Tests;

/// <summary>Which program the service runs for its built-in engine.</summary>
public sealed class EngineChoiceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mkb-vpn-engine-choice-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] content, bool executable)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, content);
        File.SetUnixFileMode(path, executable ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute : UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    [Fact]
    public void The_native_engine_beside_mkb_vpn_is_preferred()
    {
        string self = Write("mkb-vpn", [0x7F, (byte)'E', (byte)'L', (byte)'F', 2], executable: true);
        string engine = Write(LiveInterface.EngineExecutable, [0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1], executable: true);
        var (file, args) = LiveInterface.EngineCommandFor(self, self, "wgx0");
        Assert.Equal(engine, file);
        Assert.Equal(["wgx0"], args);
    }

    [Fact]
    public void Without_it_mkb_vpn_runs_its_own_engine_verb()
    {
        string self = Write("mkb-vpn", [0x7F, (byte)'E', (byte)'L', (byte)'F'], executable: true);
        var (file, args) = LiveInterface.EngineCommandFor(self, self, "wgx0");
        Assert.Equal(self, file);
        Assert.Equal(["engine", "wgx0"], args);
    }

    [Fact]
    public void A_script_or_a_file_that_cannot_run_is_not_taken_for_the_engine()
    {
        string self = Write("mkb-vpn", [0x7F, (byte)'E', (byte)'L', (byte)'F'], executable: true);
        Write(LiveInterface.EngineExecutable, "#!/bin/sh\nexec mkb-vpn engine \"$@\"\n"u8.ToArray(), executable: true);
        Assert.Equal(self, LiveInterface.EngineCommandFor(self, self, "wgx0").File);
        Write(LiveInterface.EngineExecutable, [0x7F, (byte)'E', (byte)'L', (byte)'F'], executable: false);
        Assert.Equal(self, LiveInterface.EngineCommandFor(self, self, "wgx0").File);
    }

    [Fact]
    public void Run_as_a_dll_the_engine_verb_goes_through_dotnet()
    {
        string dotnet = Write("dotnet", [0x7F, (byte)'E', (byte)'L', (byte)'F'], executable: true);
        var (file, args) = LiveInterface.EngineCommandFor(dotnet, "/x/mkb-vpn.dll", "wgx0");
        Assert.Equal(dotnet, file);
        Assert.Equal(["/x/mkb-vpn.dll", "engine", "wgx0"], args);
    }
}
