using System.Reflection;
using System.Text;
using ApprovalTests;
using ApprovalTests.Reporters;

namespace Conformance.Tests;

/// <summary>
/// TorchCheckpoints' public surface, as a user's compiler sees it, listed and approved: a change to it
/// (a type or member added, removed, or its signature changed) fails here until the approved listing is
/// updated with it, so the change shows in review.
/// </summary>
[Trait("Category", "unit")]
[UseReporter(typeof(QuietReporter))]
public sealed class PublicApiSpecs
{
    [Fact]
    public void TorchCheckpoints_public_surface_is_the_approved_listing()
    {
        var asm = typeof(TorchCheckpoints.TorchCheckpoint).Assembly;
        Approvals.Verify(Listing(asm));
    }

    /// <summary>Each public type (sorted by full name) with its public and protected members (sorted), one line each.</summary>
    internal static string Listing(Assembly asm)
    {
        var sb = new StringBuilder();
        foreach (var t in asm.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            sb.AppendLine(TypeLine(t));
            const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            var members = t.GetMembers(flags)
                .Where(Visible)
                .Where(m => m is not MethodInfo { IsSpecialName: true } && !(t.IsEnum && m.Name == "value__"))
                .Select(MemberLine).Distinct().Order(StringComparer.Ordinal);
            foreach (var m in members) sb.AppendLine("    " + m);
        }
        return sb.ToString();
    }

    private static bool Visible(MemberInfo m) => m switch
    {
        MethodBase b => b.IsPublic || b.IsFamily || b.IsFamilyOrAssembly,
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => p.GetAccessors(true).Any(a => a.IsPublic || a.IsFamily || a.IsFamilyOrAssembly),
        EventInfo e => e.AddMethod is { } a && (a.IsPublic || a.IsFamily),
        Type n => n.IsNestedPublic || n.IsNestedFamily,
        _ => false,
    };

    private static string TypeLine(Type t)
    {
        var kind = t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct" : typeof(Delegate).IsAssignableFrom(t) ? "delegate" : "class";
        var mods = t.IsAbstract && t.IsSealed ? "static " : t.IsSealed && !t.IsValueType && kind == "class" ? "sealed " : t.IsAbstract && kind == "class" ? "abstract " : "";
        var bases = new List<string>();
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) && b != typeof(MulticastDelegate)) bases.Add(Name(b));
        bases.AddRange(t.GetInterfaces().Select(Name).Order(StringComparer.Ordinal));
        return $"{mods}{kind} {Name(t)}" + (bases.Count > 0 ? " : " + string.Join(", ", bases) : "");
    }

    private static string MemberLine(MemberInfo m) => m switch
    {
        ConstructorInfo c => $"{(c.IsStatic ? "static " : "")}.ctor({Params(c)})",
        MethodInfo mi => $"{(mi.IsStatic ? "static " : "")}{(mi.IsAbstract ? "abstract " : mi.IsVirtual && !mi.IsFinal && mi.GetBaseDefinition() == mi ? "virtual " : "")}{Name(mi.ReturnType)} {mi.Name}{(mi.IsGenericMethod ? "<" + string.Join(", ", mi.GetGenericArguments().Select(Name)) + ">" : "")}({Params(mi)})",
        PropertyInfo p => $"{(p.GetAccessors(true)[0].IsStatic ? "static " : "")}{Name(p.PropertyType)} {p.Name} {{ {(p.GetMethod is { } g && (g.IsPublic || g.IsFamily) ? "get; " : "")}{(p.SetMethod is { } s && (s.IsPublic || s.IsFamily) ? (s.ReturnParameter.GetRequiredCustomModifiers().Any(x => x.Name == "IsExternalInit") ? "init; " : "set; ") : "")}}}"
                              + (p.GetIndexParameters() is { Length: > 0 } ix ? $" [{string.Join(", ", ix.Select(i => Name(i.ParameterType)))}]" : ""),
        FieldInfo f => $"{(f.IsLiteral ? "const " : f.IsStatic ? "static " : "")}{(f.IsInitOnly ? "readonly " : "")}{Name(f.FieldType)} {f.Name}",
        EventInfo e => $"event {Name(e.EventHandlerType!)} {e.Name}",
        Type n => $"nested {TypeLine(n)}",
        _ => m.ToString() ?? m.Name,
    };

    private static string Params(MethodBase m) =>
        string.Join(", ", m.GetParameters().Select(p => $"{(p.IsOut ? "out " : p.ParameterType.IsByRef ? "ref " : "")}{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}"));

    private static string Name(Type t)
    {
        if (t.IsByRef) return Name(t.GetElementType()!);
        if (t.IsPointer) return Name(t.GetElementType()!) + "*";
        if (t.IsArray) return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (Nullable.GetUnderlyingType(t) is { } u) return Name(u) + "?";
        var name = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : t.Namespace is { } ns && ns != "System" ? ns + "." + t.Name : t.Name;
        if (!t.IsGenericType) return name;
        return name[..name.IndexOf('`')] + "<" + string.Join(", ", t.GetGenericArguments().Select(Name)) + ">";
    }
}
