using System.Net;
using System.Net.Sockets;

namespace MLNode.Worker.Tests;

/// <summary>
/// Loopback ports for test servers. Probes of one call are held open together, and a port this process handed out once
/// is never handed out again, so two servers started side by side (a worker and its callback receiver) cannot collide.
/// </summary>
internal static class FreePorts
{
    private static readonly HashSet<int> Given = [];

    public static int[] Take(int count)
    {
        lock (Given)
        {
            var listeners = new List<TcpListener>();
            try
            {
                var ports = new List<int>();
                while (ports.Count < count)
                {
                    var listener = new TcpListener(IPAddress.Loopback, 0);
                    listeners.Add(listener);
                    listener.Start();
                    var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                    if (Given.Add(port)) ports.Add(port);
                }
                return [.. ports];
            }
            finally
            {
                foreach (var listener in listeners) listener.Dispose();
            }
        }
    }
}
