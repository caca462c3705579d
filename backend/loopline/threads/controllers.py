controllers: list[type] = []
