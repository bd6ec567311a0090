Console.Error.WriteLine("not written yet");
return 2;
