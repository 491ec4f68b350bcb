using MLNode.Worker.Hosting;

return await WorkerCommand.RunAsync(args);
