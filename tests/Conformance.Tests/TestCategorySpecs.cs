using System.Reflection;

namespace Conformance.Tests;

/// <summary>
/// Every spec class says what it needs, so that `make unit` (Category=unit) is a quick loop: <c>unit</c>
/// specs need no runtime (no PyTorch, no TorchSharp worker, no rootfs), <c>runtime</c> specs start real
/// workers or tools, <c>matrix</c> specs read the full matrix run.
/// </summary>
[Trait("Category", "unit")]
public sealed class TestCategorySpecs
{
    private static readonly string[] Categories = ["unit", "runtime", "matrix"];

    private static IEnumerable<Type> SpecClasses() => typeof(TestCategorySpecs).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && t.GetMethods().Any(m => m.GetCustomAttributes<FactAttribute>(inherit: true).Any()));

    private static IReadOnlyList<string> CategoriesOf(Type t) => t.CustomAttributes
        .Where(a => a.AttributeType == typeof(TraitAttribute) && (string?)a.ConstructorArguments[0].Value == "Category")
        .Select(a => (string)a.ConstructorArguments[1].Value!).ToList();

    [Fact]
    public void Every_spec_class_has_exactly_one_category_and_the_matrix_readers_are_matrix()
    {
        var classes = SpecClasses().ToList();
        Assert.True(classes.Count >= 40, $"only {classes.Count} spec classes found");
        foreach (var t in classes)
        {
            var categories = CategoriesOf(t);
            Assert.True(categories.Count == 1 && Categories.Contains(categories[0]),
                $"{t.Name} has Category {string.Join(", ", categories)}: give it exactly one of {string.Join(", ", Categories)}");
            var readsMatrix = t.GetConstructors().Any(c => c.GetParameters().Any(p => p.ParameterType == typeof(MatrixFixture)));
            if (readsMatrix) Assert.True(categories[0] == "matrix", $"{t.Name} reads the matrix run but is Category {categories[0]}");
            // A unit spec starts no worker: it never takes the matrix, the check fixture or the suite.
            if (categories[0] == "unit")
                Assert.DoesNotContain(t.GetConstructors().SelectMany(c => c.GetParameters()), p => p.ParameterType == typeof(MatrixFixture) || p.ParameterType == typeof(CheckFixture));
        }
    }
}
