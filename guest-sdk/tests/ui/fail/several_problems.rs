#[rh_guest::function]
async fn all_wrong<T>(&self, (a, b): (T, T)) -> T {
    a
}

fn main() {}
