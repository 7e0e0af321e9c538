"""A user's training script whose model exists only when the file runs as a script (the error catalogue's
`import-main-block` names the line below: keep it there)."""

from torch import nn

if __name__ == "__main__":

    class ScriptNet(nn.Module):
        pass
