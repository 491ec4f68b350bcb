using Microsoft.AspNetCore.Diagnostics;
using MLNode.Protocol;
using MLNode.Protocol.Management;

namespace MLNode.Worker.Hosting;

/// <summary>
/// Last line of defence: a malformed request that got past the route's own checks is a 400, and a real
/// fault is a 500 with the reference's <c>{"detail": …}</c> shape. Either way the node keeps serving.
/// </summary>
public static class ErrorHandler
{
    public static Task WriteAsync(HttpContext context)
    {
        var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
        var (status, detail) = error switch
        {
            BadHttpRequestException bad => (bad.StatusCode, $"body: {bad.Message}"),
            OperationCanceledException => (StatusCodes.Status499ClientClosedRequest, "request cancelled"),
            _ => (StatusCodes.Status500InternalServerError, error?.Message ?? "internal error"),
        };
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new ErrorDetail(detail), GonkaJson.Options);
    }
}
