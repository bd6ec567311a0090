Console.Error.WriteLine("usage: see tools/LoadTool/README (not written yet)");
return 2;
