namespace MkbVpn; internal static class Placeholder {}
