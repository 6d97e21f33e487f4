"""Stand-in for numpy in seed 001's client: np.array(bytes).tostring() gives the bytes back."""


class _Array:
    def __init__(self, data):
        self.data = bytes(data)

    def tostring(self):
        return self.data


def array(data):
    return data if isinstance(data, _Array) else _Array(data)
