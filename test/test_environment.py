"""The environment `make setup` builds: torch with a working torchvision (CPU)."""


def test_torchvision_ops_run_on_cpu():
    import torch
    from torchvision.ops import nms   # fails with a CPU-only torch the registry's torchvision was not built for
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
