namespace MLNode.Worker.Api;

/// <summary>
/// The OpenAI-only listener (the reference node's port 5000). It serves /v1/* and the engine's /health;
/// the management API is reachable only on the management port, so exposing 5000 does not expose control.
/// </summary>
public sealed class InferencePort(int port)
{
    public int Port { get; } = port;

    public bool Matches(HttpContext context) => context.Connection.LocalPort == Port;

    public static bool IsAllowedPath(PathString path) =>
        path.StartsWithSegments("/v1") || path.Equals("/health", StringComparison.Ordinal);

    public RequestDelegate Gate(RequestDelegate next) => context =>
    {
        if (Matches(context) && !IsAllowedPath(context.Request.Path))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return context.Response.WriteAsJsonAsync(new { detail = "Not Found" });
        }
        return next(context);
    };
}
