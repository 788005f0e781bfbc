using System.Reflection;
using MkbVpn.WireGuard;

string version = typeof(EngineProgram).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
return EngineProgram.Main(args, version);
