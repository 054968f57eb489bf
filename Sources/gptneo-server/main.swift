print("gptneo-server: not yet wired")
