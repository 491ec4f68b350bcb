using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class BinomialTestTests
{
    // Reference tails P[X ≥ k], X ~ Binomial(n, p), computed in python3:
    //   exact:  sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(k, n + 1)) with p a
    //           fractions.Fraction, printed with mpmath to 20 digits;
    //   mpmath: for n = 100000, the same sum at 60 decimal digits, terms by the ratio (n−i)/(i+1)·p/(1−p).
    // The code's p is the double nearest 0.1 (or 0.02, 0.001); that moves these tails by < 1e-12 relative.
    [Theory]
    [InlineData(10, 200, 0.02, 0.0074792878653614870777)]       // exact
    [InlineData(32, 32, 0.1, 1.0e-32)]                          // exact: 0.1^32
    [InlineData(5, 1000, 0.001, 0.0036368780295217901401)]      // exact
    [InlineData(1, 200, 0.1, 0.99999999929449208913)]           // exact: 1 − 0.9^200
    [InlineData(27, 200, 0.1, 0.067224684073425001907)]         // exact: no fraud at α = 0.05 …
    [InlineData(28, 200, 0.1, 0.043428499610610781198)]         // exact: … fraud from 28 mismatches of 200
    [InlineData(3, 32, 0.1, 0.6333164809193798396)]             // exact
    [InlineData(5, 32, 0.1, 0.21149828869932724661)]            // exact
    [InlineData(6, 32, 0.1, 0.094398674312085296005)]           // exact
    [InlineData(9, 32, 0.1, 0.0032953808437041576288)]          // exact
    [InlineData(150, 200, 0.1, 2.4283368147082355645e-105)]     // exact
    [InlineData(10200, 100000, 0.1, 0.017945857126054997053)]   // mpmath
    [InlineData(12000, 100000, 0.1, 1.0262376445908893408e-93)] // mpmath
    [InlineData(150, 100000, 0.001, 1.860406210128353783e-6)]   // mpmath
    public void UpperTail_MatchesExactValues(int k, int n, double p, double expected)
    {
        // n·(a few ulps) of rounding accumulates along the sum of n terms: 1e-9 relative for n = 100000.
        Assert.Equal(expected, BinomialTest.UpperTail(k, n, p), expected * 1e-9);
    }

    [Fact]
    public void UpperTail_BelowDoubleRangeIsZero()
    {
        // P[X ≥ 99990] for n = 100000, p = 0.1 is 9.6e-99948 (mpmath): no double holds it.
        Assert.Equal(0.0, BinomialTest.UpperTail(99990, 100000, 0.1));
    }

    [Theory]
    [InlineData(0, 0, 0.1, 1.0)]
    [InlineData(0, 100, 0.1, 1.0)]
    [InlineData(1, 100, 0.0, 0.0)]
    [InlineData(100, 100, 1.0, 1.0)]
    [InlineData(50, 100, 1.0, 1.0)]
    public void UpperTail_EdgeCases(int k, int n, double p, double expected) =>
        Assert.Equal(expected, BinomialTest.UpperTail(k, n, p));

    [Fact]
    public void UpperTail_NeverExceedsOne()
    {
        for (var k = 0; k <= 50; k++)
            Assert.InRange(BinomialTest.UpperTail(k, 100000, 0.1), 0.0, 1.0);
    }

    [Fact]
    public void UpperTail_RejectsImpossibleArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => BinomialTest.UpperTail(5, 4, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => BinomialTest.UpperTail(-1, 4, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => BinomialTest.UpperTail(1, 4, 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => BinomialTest.UpperTail(1, 4, double.NaN));
    }
}
