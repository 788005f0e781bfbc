namespace MkbVpn.WireGuard; internal static class Placeholder {}
