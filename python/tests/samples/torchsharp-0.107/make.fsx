// Writes this folder's samples with real TorchSharp 0.107 (run in the trixie rootfs, where
// libLibTorchSharp.so loads), after `dotnet build` has built the TorchSharp worker:
//   W=harness/Conformance.Workers.TorchSharp/bin/Release/torchsharp-0.107.0/net10.0
//   chroot /var/cache/torch-conformance/rootfs-trixie bash -c \
//     "cd $PWD/$W && LD_LIBRARY_PATH=\$PWD/runtimes/linux-x64/native dotnet fsi $PWD/python/tests/samples/torchsharp-0.107/make.fsx"
#r "../../../../harness/Conformance.Workers.TorchSharp/bin/Release/torchsharp-0.107.0/net10.0/TorchSharp.dll"
open TorchSharp
let dir = __SOURCE_DIRECTORY__
torch.manual_seed(0L) |> ignore
// Tensor.Save: one tensor, no count and no key.
torch.arange(12L, dtype=torch.float32).reshape(3L, 4L).Save(System.IO.Path.Combine(dir, "tensor.bin"))
let lin = torch.nn.Linear(4L, 3L)
let step (opt: torch.optim.Optimizer) =
    opt.zero_grad()
    lin.forward(torch.ones(2L, 4L)).sum().backward()
    opt.step() |> ignore
// optimizer.save_state_dict: Adam after two steps, SGD with momentum after one.
let adam = torch.optim.Adam(lin.parameters(), lr=0.001)
step adam
step adam
adam.save_state_dict(System.IO.Path.Combine(dir, "adam.dat"))
let sgd = torch.optim.SGD(lin.parameters(), 0.01, momentum=0.9)
step sgd
sgd.save_state_dict(System.IO.Path.Combine(dir, "sgd.dat"))
// Module.save: the state dict the other two sit beside.
lin.save(System.IO.Path.Combine(dir, "linear.bin")) |> ignore
printfn "wrote tensor.bin adam.dat sgd.dat linear.bin in %s" dir
