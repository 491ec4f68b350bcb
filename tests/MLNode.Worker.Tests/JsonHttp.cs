using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace MLNode.Worker.Tests;

/// <summary>Sends a JSON request and reads the answer as JSON (null for an empty body), the way dapi talks to the node.</summary>
public static class JsonHttp
{
    public static async Task<(HttpStatusCode Status, JsonNode? Body)> Send(HttpClient client, HttpMethod method, string path, string? json = null)
    {
        var ct = TestContext.Current.CancellationToken;
        using var request = new HttpRequestMessage(method, path);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await client.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }
}
