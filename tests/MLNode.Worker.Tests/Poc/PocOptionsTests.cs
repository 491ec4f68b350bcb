using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using MLNode.Worker.Poc;

namespace MLNode.Worker.Tests.Poc;

public sealed class PocOptionsTests
{
    [Fact]
    public void Reference_environment_variables_are_read_below_every_configured_source()
    {
        // Variables no other test depends on: the chunk timeout matters only for failing jobs, and every test
        // that fills the queue sets its own limit.
        Environment.SetEnvironmentVariable("POC_GENERATE_CHUNK_TIMEOUT_SEC", "7.5");
        Environment.SetEnvironmentVariable("POC_MAX_QUEUED_NONCES", "5000");
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Configuration.AddInMemoryCollection([KeyValuePair.Create("Poc:MaxQueuedNonces", (string?)"42")]);
            builder.AddPoc();
            var options = builder.Configuration.GetSection(PocOptions.Section).Get<PocOptions>()!;
            Assert.Equal(7.5, options.GenerateChunkTimeoutSec);
            Assert.Equal(42, options.MaxQueuedNonces);
            Assert.Equal(5, options.CallbackIntervalSec);
            Assert.True(options.IsValid());
        }
        finally
        {
            Environment.SetEnvironmentVariable("POC_GENERATE_CHUNK_TIMEOUT_SEC", null);
            Environment.SetEnvironmentVariable("POC_MAX_QUEUED_NONCES", null);
        }
    }
}
