using MLNode.Runtime.Hub;
using Xunit;

namespace MLNode.Runtime.Tests.Hub;

public sealed class HubOptionsTests
{
    private static HubOptions FromEnvironment(params (string Name, string Value)[] variables)
    {
        var options = new HubOptions();
        options.ApplyEnvironment(name => variables.FirstOrDefault(v => v.Name == name).Value);
        return options;
    }

    [Fact]
    public void Defaults_are_the_reference_nodes()
    {
        var options = new HubOptions();

        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface"), options.HfHome);
        Assert.Equal("https://huggingface.co", options.Endpoint);
        Assert.Null(options.Token);
        Assert.False(options.Offline);
        Assert.Equal(TimeSpan.FromSeconds(600), options.StallTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), options.StallCheckInterval);
        Assert.Equal(3, options.MaxConcurrentDownloads);
        Assert.Equal(3, options.MaxRetries);
        Assert.Equal(TimeSpan.FromSeconds(1), options.RetryBackoffBase);
    }

    [Fact]
    public void Environment_variables_override_the_defaults()
    {
        var options = FromEnvironment(("HF_HOME", "/root/.cache"), ("HF_ENDPOINT", "https://hf-mirror.example/"), ("HF_TOKEN", "hf_secret"),
            ("HF_HUB_OFFLINE", "1"), ("MODEL_DOWNLOAD_STALL_TIMEOUT", "90.5"));

        Assert.Equal("/root/.cache", options.HfHome);
        Assert.Equal("/root/.cache/hub", options.HubCachePath);
        Assert.Equal("https://hf-mirror.example", options.Endpoint);
        Assert.Equal("hf_secret", options.Token);
        Assert.True(options.Offline);
        Assert.Equal(TimeSpan.FromSeconds(90.5), options.StallTimeout);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("true", true)]
    [InlineData("TRUE", true)]
    [InlineData(" Yes ", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("on", false)]
    [InlineData("", false)]
    public void Offline_accepts_the_reference_spellings(string value, bool offline) =>
        Assert.Equal(offline, FromEnvironment(("HF_HUB_OFFLINE", value)).Offline);

    [Theory]
    [InlineData("ten")]
    [InlineData("0")]
    [InlineData("-5")]
    public void A_stall_timeout_that_is_no_positive_number_is_an_error_naming_the_variable(string value)
    {
        var error = Assert.Throws<FormatException>(() => FromEnvironment(("MODEL_DOWNLOAD_STALL_TIMEOUT", value)));
        Assert.Equal($"MODEL_DOWNLOAD_STALL_TIMEOUT='{value}' is not a positive number of seconds", error.Message);
    }

    [Fact]
    public void Without_HF_TOKEN_the_token_saved_by_huggingface_cli_login_is_used()
    {
        var home = Directory.CreateTempSubdirectory("mlnode-hfhome-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(home, "token"), "hf_saved\n");

            Assert.Equal("hf_saved", FromEnvironment(("HF_HOME", home)).Token);
            Assert.Equal("hf_env", FromEnvironment(("HF_HOME", home), ("HF_TOKEN", "hf_env")).Token);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}
