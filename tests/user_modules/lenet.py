"""A LeNet-5-like user network for the tests: images in, (logits, [hidden layers]) out."""

import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.head = nn.Linear(84, n_classes)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h1 = F.relu(self.fc1(h.flatten(1)))
        h2 = F.relu(self.fc2(h1))
        return self.head(h2), [h1, h2]


class BatchNormMLP(nn.Module):
    """The study's batch-norm MLP: running statistics are buffers, kept per member."""

    def __init__(self, input_dim=784, n_classes=10):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, 120)
        self.bn1 = nn.BatchNorm1d(120)
        self.fc2 = nn.Linear(120, 84)
        self.bn2 = nn.BatchNorm1d(84)
        self.fc3 = nn.Linear(84, n_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.fc1(x)))
        z = F.relu(self.bn2(self.fc2(x)))
        return self.fc3(z), z


class DropoutMLP(nn.Module):
    def __init__(self, input_dim=784, n_classes=10, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, 64)
        self.drop = nn.Dropout(p)
        self.fc2 = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))
