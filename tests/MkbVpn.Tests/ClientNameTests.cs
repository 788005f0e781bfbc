using MkbVpn.Clients;

namespace MkbVpn.Tests;

public class ClientNameTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("alice")]
    [InlineData("Alice-Phone")]
    [InlineData("bob.laptop")]
    [InlineData("c_d=e+f")]
    [InlineData("0day")]
    [InlineData("abcdefghijklmno")]   // 15
    public void Valid_names(string name)
    {
        Assert.True(ClientName.IsValid(name));
        Assert.Null(ClientName.Validate(name));
        ClientName.EnsureValid(name);
    }

    [Fact]
    public void Sixteen_characters_are_rejected_with_the_limit_in_the_message()
    {
        var reason = ClientName.Validate("abcdefghijklmnop");
        Assert.NotNull(reason);
        Assert.Contains("16 characters", reason);
        Assert.Contains("at most 15", reason);
    }

    [Theory]
    [InlineData("-alice", "must start with a letter or digit")]
    [InlineData(".alice", "must start with a letter or digit")]
    [InlineData("_alice", "must start with a letter or digit")]
    [InlineData("al ice", "may only contain")]
    [InlineData("alice ", "may only contain")]
    [InlineData("al/ice", "may only contain")]
    [InlineData("al:ice", "may only contain")]
    [InlineData("zoë", "may only contain")]
    [InlineData("Ålice", "must start with a letter or digit")]
    [InlineData("名前", "must start with a letter or digit")]
    public void Invalid_names_are_rejected(string name, string expected)
    {
        Assert.False(ClientName.IsValid(name));
        var e = Assert.Throws<UserInputException>(() => ClientName.EnsureValid(name));
        Assert.Equal(ExitCodes.UserError, e.ExitCode);
        Assert.Contains(expected, e.Message);
        Fixtures.AssertOneLine(e.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Empty_name_is_rejected(string? name)
    {
        Assert.False(ClientName.IsValid(name));
        Assert.Equal("client name is empty", ClientName.Validate(name));
    }

    [Theory]
    [InlineData("ali\nce")]
    [InlineData("ali\u001b[31mce")]
    [InlineData("a\rb")]
    [InlineData("a\u0007")]
    [InlineData("abcdefghijklmno\n")]   // too long and a control char
    public void Control_characters_are_not_echoed(string name)
    {
        var e = Assert.Throws<UserInputException>(() => ClientName.EnsureValid(name));
        Assert.DoesNotContain(e.Message, c => char.IsControl(c));
        Assert.Contains('?', e.Message);
    }

    [Fact]
    public void Very_long_names_are_shown_truncated()
    {
        var reason = ClientName.Validate(new string('x', 500))!;
        Assert.Contains("500 characters", reason);
        Assert.Contains(new string('x', 40) + "…", reason);
        Assert.DoesNotContain(new string('x', 41), reason);
    }
}
